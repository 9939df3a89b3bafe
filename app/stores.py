"""RocksDB within one memory budget per worker.

Faust opens one RocksDB database per table partition (15 tables: up to 15 x PARTITIONS
databases on a worker holding every partition, active and standby) with its defaults for a
dedicated machine: each database a 2 GiB block cache of its own and memtables of 64 MiB, three
of them. Memtables fill from every write until 64 MiB before anything is flushed, so a worker's
resident memory grew with its writes for as long as it ran (seen in the soak: 100 MB -> 600 MB in
ten minutes of the seed's load, 360 MB of it unflushed memtables, towards tens of GB: far past a
pod's memory limit).

Here every database of the worker shares one write-buffer budget (RocksDB's
WriteBufferManager: past ROCKSDB_MEMTABLES_MB the memtable being written is flushed) and one
block cache of ROCKSDB_CACHE_MB; each memtable is at most an eighth of the budget. Faust's other
options (bloom filter, open files, file sizes) stay as they are. Registered as the store
`rocksdb-budget://` (app/main.py); the records, files and recovery are Faust's own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import rocksdict
from faust.stores import STORES
from faust.stores.rocksdb import RocksDBOptions, Store

SCHEME = "rocksdb-budget"
MIB = 1024 * 1024
MEMTABLES_PER_BUDGET = 8  # a memtable is at most this part of the write-buffer budget


class Budget:
    """The memory every RocksDB database of this process shares."""

    def __init__(self, memtables_mb: int, cache_mb: int) -> None:
        self.memtables_bytes = memtables_mb * MIB
        self.write_buffers = rocksdict.WriteBufferManager(self.memtables_bytes, False)  # flush, never stall
        self.cache = rocksdict.Cache(cache_mb * MIB)

    @property
    def memtable_bytes(self) -> int:
        return max(MIB, self.memtables_bytes // MEMTABLES_PER_BUDGET)


@lru_cache(maxsize=None)
def budget(memtables_mb: int, cache_mb: int) -> Budget:
    return Budget(memtables_mb, cache_mb)


class BudgetedOptions(RocksDBOptions):
    """Faust's options for a database, its memory taken from the process's `Budget`."""

    def __init__(self, shared: Budget, faust_options: RocksDBOptions) -> None:
        super().__init__(max_open_files=faust_options.max_open_files,
                         target_file_size_base=faust_options.target_file_size_base,
                         bloom_filter_size=faust_options.bloom_filter_size,
                         use_rocksdict=True, ttl=faust_options.ttl,
                         write_buffer_size=shared.memtable_bytes, max_write_buffer_number=2)
        self.budget = shared

    def as_options(self) -> Any:
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        if self.max_open_files is not None:
            options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_write_buffer_manager(self.budget.write_buffers)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(self.budget.cache)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        return options


class BudgetedStore(Store):
    """Faust's RocksDB store; its databases opened within the worker's budget, given as the
    table's options `memtables_mb` and `cache_mb` (app.main.state_table)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        extra = self.rocksdb_options.extra_options
        self.rocksdb_options = BudgetedOptions(budget(int(extra["memtables_mb"]), int(extra["cache_mb"])),
                                               self.rocksdb_options)


STORES.aliases[SCHEME] = f"{__name__}:BudgetedStore"
