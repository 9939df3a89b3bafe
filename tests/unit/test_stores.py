"""RocksDB within one memory budget (app/stores.py), and what it takes from Faust 0.15.3."""

from __future__ import annotations

import os

import rocksdict
from faust.stores import by_url
from faust.stores.rocksdb import RocksDBOptions

from app.stores import SCHEME, Budget, BudgetedOptions, BudgetedStore, budget


def test_the_scheme_names_the_budgeted_store():
    assert by_url(f"{SCHEME}://") is BudgetedStore


def test_every_table_of_the_app_opens_its_databases_within_the_workers_budget(tmp_path):
    import importlib
    from pathlib import Path

    from app.main import app, settings

    for store_module in sorted((Path(__file__).parents[2] / "tables").glob("*/store.py")):
        importlib.import_module(f"tables.{store_module.parent.name}.store")  # each domain's tables
    shared = budget(settings.rocksdb_memtables_mb, settings.rocksdb_cache_mb)
    assert len(app.tables) >= 12, "the domains registered fewer tables than they have"
    for table in app.tables.values():
        store = table._new_store()  # Faust's own path from a table to its store
        assert isinstance(store, BudgetedStore), table.name
        assert store.rocksdb_options.budget is shared, table.name
        assert store.rocksdb_options.write_buffer_size == shared.memtable_bytes


def test_faust_options_other_than_memory_are_kept():
    faust = RocksDBOptions(max_open_files=77, target_file_size_base=3 * 2**20, bloom_filter_size=5, ttl=None)
    ours = BudgetedOptions(Budget(16, 8), faust)
    assert (ours.max_open_files, ours.target_file_size_base, ours.bloom_filter_size) == (77, 3 * 2**20, 5)
    assert ours.write_buffer_size == 2 * 2**20 and ours.max_write_buffer_number == 2


def _sst_files(path) -> int:
    return sum(1 for name in os.listdir(path) if name.endswith(".sst"))


def test_databases_sharing_a_budget_flush_before_it_is_passed(tmp_path):
    """Eight databases written 4 MiB each (32 MiB in all) with a 8 MiB budget: the memtables
    together stay near the budget (Faust's defaults would hold all 32 MiB unflushed), each
    database's data is flushed to files, and every value reads back."""
    shared = Budget(memtables_mb=8, cache_mb=8)
    options = BudgetedOptions(shared, RocksDBOptions())
    value = os.urandom(1000)
    dbs = [options.open(tmp_path / f"db{n}") for n in range(8)]
    try:
        for n, db in enumerate(dbs):
            for i in range(4096):
                db[f"{n}-{i}".encode()] = value
        assert shared.write_buffers.get_usage() <= 1.25 * shared.memtables_bytes
        assert sum(_sst_files(tmp_path / f"db{n}") for n in range(8)) >= 3
        assert all(db[f"{n}-{i}".encode()] == value for n, db in enumerate(dbs) for i in (0, 2048, 4095))
    finally:
        for db in dbs:
            db.close()


def test_faust_still_builds_the_options_the_store_replaces(tmp_path):
    """Pinned to faust-streaming 0.15.3: its Store keeps the table's options it does not know in
    `rocksdb_options.extra_options` and opens every database with `rocksdb_options.open`."""
    from faust.stores.rocksdb import Store

    assert "rocksdb_options" in Store.__init__.__code__.co_names
    assert RocksDBOptions(memtables_mb=1).extra_options == {"memtables_mb": 1}
    assert "open" in vars(RocksDBOptions) and "as_options" in vars(RocksDBOptions)
    assert isinstance(BudgetedOptions(Budget(8, 8), RocksDBOptions()).as_options(), rocksdict.Options)
