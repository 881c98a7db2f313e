"""The migrations and the models describe one schema: what `meterline schema upgrade` builds
is what the code maps (a table dropped by a migration is gone from the models too, and back
after a downgrade)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect

from storage.migrate import upgrade
from storage.models import Base


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def test_the_migrated_schema_has_every_table_and_index_of_the_models(engine: Engine) -> None:
    added_or_dropped = [
        d for d in _differences(engine)
        if isinstance(d, tuple) and d[0] in ("add_table", "remove_table", "add_index",
                                             "remove_index")
    ]  # fmt: skip
    assert added_or_dropped == []


def test_rate_limit_hits_is_gone_at_head_and_back_one_revision_down(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'down.db'}"
    upgrade(url)
    engine = create_engine(url)
    assert "rate_limit_hits" not in inspect(engine).get_table_names()
    assert "counters" in inspect(engine).get_table_names()
    from alembic import command

    from storage.migrate import alembic_config

    command.downgrade(alembic_config(url), "0004")
    assert "rate_limit_hits" in inspect(engine).get_table_names()
    upgrade(url)
    assert "rate_limit_hits" not in inspect(engine).get_table_names()
    engine.dispose()
