"""Doubles of the systems the service talks to but that we cannot run here.

`dev/simulate.py` plays an Asterisk call center's queue_log (`python -m app simulate`);
`make run` and the tests use them. `dev/kafka/` holds the local Kafka broker's setup.
"""
