// Reads broker properties files as Kafka 4.1 itself does (tests/deploy/test_compose.py runs it
// with the Maven jars of dev/kafka, as a single-file source program): for each file, the names
// Kafka does not know, then the broker configuration built from it, which checks every value
// and the KRaft settings' consistency. Prints "ok <file>" or "unknown <file> <name>" /
// "invalid <file> <message>", one per line.
import java.io.FileReader;
import java.util.Properties;
import java.util.Set;

public class KafkaConfigCheck {
    public static void main(String[] files) throws Exception {
        Set<String> known = org.apache.kafka.server.config.AbstractKafkaConfig.CONFIG_DEF.names();
        for (String file : files) {
            Properties props = new Properties();
            try (FileReader reader = new FileReader(file)) {
                props.load(reader);
            }
            boolean good = true;
            for (String name : props.stringPropertyNames()) {
                if (!known.contains(name)) {
                    System.out.println("unknown " + file + " " + name);
                    good = false;
                }
            }
            try {
                new kafka.server.KafkaConfig(props, false);
            } catch (Exception e) {
                System.out.println("invalid " + file + " " + e.getMessage().replace('\n', ' '));
                good = false;
            }
            if (good) {
                System.out.println("ok " + file);
            }
        }
    }
}
