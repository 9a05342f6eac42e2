"""`rewardlab annotate`: run the annotation service and manage its database from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rewardlab.cli.console import out, user_errors, warn
from rewardlab.cli.options import SeedOpt

if TYPE_CHECKING:
    from rewardlab.collect.store import Store

annotate_app = typer.Typer(no_args_is_help=True, help="Collect feedback from people: web app, agreement, export.")

DbOpt = Annotated[str, typer.Option("--db", help="SQLite file path or SQLAlchemy URL "
                                                 "(postgresql+psycopg://user@host/db).")]
ProjectOpt = Annotated[str, typer.Option("--project", help="Project name.")]


def _store(db: str) -> Store:
    from rewardlab.collect.store import open_store

    return open_store(db)


def _add_members(store: Store, project_id: int, names: str, done: str) -> None:
    """Add comma-separated users to a project, say so, and warn when fewer people than its overlap can label."""
    for name in filter(None, (n.strip() for n in names.split(","))):
        store.add_member(project_id, name)
    out.print(done, highlight=False)
    if warning := store.overlap_warning(project_id):
        warn(warning)


@annotate_app.command("serve")
def serve(db: DbOpt = "annotations.db", host: str = "127.0.0.1", port: int = 8000,
          workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1) -> None:
    """Serve the API and browser UI (creates or upgrades the database first)."""
    from rewardlab.collect.server import serve as run

    with user_errors():
        out.print(f"annotation service on http://{host}:{port} (database: {db})", highlight=False)
        run(db, host, port, workers)


@annotate_app.command("init")
def init(db: DbOpt = "annotations.db") -> None:
    """Create the database, or upgrade an older schema in place."""
    from rewardlab.collect.store import SCHEMA_VERSION, Store, make_engine

    with user_errors():
        before = Store(make_engine(db)).migrate()
        change = "created" if before == 0 else ("up to date" if before == SCHEMA_VERSION else f"upgraded from v{before}")
        out.print(f"{db}: schema v{SCHEMA_VERSION} ({change})", highlight=False)


@annotate_app.command("user")
def user(name: str, db: DbOpt = "annotations.db",
         role: Annotated[str, typer.Option(help="annotator or admin.")] = "annotator",
         rotate: Annotated[bool, typer.Option(help="Issue a new token for an existing user.")] = False) -> None:
    """Create an account (or rotate its token) and print its API token once; only a hash is stored."""
    with user_errors():
        store = _store(db)
        token = store.rotate_token(name) if rotate else store.create_user(name, role)
        out.print(token, highlight=False)


@annotate_app.command("project")
def project(name: str, task: Annotated[str, typer.Option(help="pairwise, ranking, rating, binary, correction, "
                                                               "critique or steps.")],
            db: DbOpt = "annotations.db", instructions: str = "",
            instructions_file: Annotated[Path | None, typer.Option(help="Read the instructions from a file.")] = None,
            overlap: Annotated[int, typer.Option(help="Distinct annotators per item.")] = 1,
            scale: Annotated[str, typer.Option(help="Rating scale low,high.")] = "1,5",
            members: Annotated[str, typer.Option(help="Comma-separated user names to add.")] = "") -> None:
    """Create a project and add members."""
    with user_errors():
        store = _store(db)
        text = instructions_file.read_text(encoding="utf-8") if instructions_file else instructions
        config = {"scale": [int(v) for v in scale.split(",")]} if task == "rating" else {}
        project_id = store.create_project(name, task, text, overlap, config)
        _add_members(store, project_id, members, f"project {name!r} (id {project_id}, {task}, overlap {overlap})")


@annotate_app.command("member")
def member(user_names: Annotated[str, typer.Argument(help="Comma-separated user names.")], project: ProjectOpt,
           db: DbOpt = "annotations.db") -> None:
    """Give users access to a project."""
    with user_errors():
        store = _store(db)
        _add_members(store, store.project_id(project), user_names, f"members added to {project!r}")


@annotate_app.command("import")
def import_items(path: Path, project: ProjectOpt, db: DbOpt = "annotations.db",
                 pairs_per_prompt: Annotated[int | None, typer.Option(help="Pairwise from candidate sets: at most "
                                                                           "this many random pairs per prompt.")] = None,
                 on_empty: Annotated[str, typer.Option(help="Pair files (any format): 'error', or 'skip' (counted) "
                                                            "pairs whose response text is empty.")] = "error",
                 seed: SeedOpt = 0) -> None:
    """Add items from pairs (any feedback format), candidate sets or {prompt, response} JSONL."""
    from rewardlab.collect.items import items_from_file

    with user_errors():
        store = _store(db)
        project_id = store.project_id(project)
        task = store.project_settings(project_id)["task_type"]
        items, notes = items_from_file(path, task, pairs_per_prompt, seed, on_empty)
        for note in notes:
            out.print(f"note: {note}", highlight=False)
        added, skipped = store.import_items(project_id, items)
        out.print(f"{added} items added to {project!r}" + (f", {skipped} already there" if skipped else ""),
                  highlight=False)


@annotate_app.command("export")
def export(project: ProjectOpt, out_dir: Annotated[Path, typer.Option("--out", help="Dataset directory to write.")],
           db: DbOpt = "annotations.db") -> None:
    """Write the project's labels as a rewardlab dataset (annotator ids kept); `rewardlab train` reads it."""
    from rewardlab.collect.export import export_project
    from rewardlab.data.parquet import write_parquet

    with user_errors():
        store = _store(db)
        dataset = export_project(store, store.project_id(project))
        write_parquet(dataset, out_dir)
        out.print(f"{len(dataset)} feedback rows from {len(dataset.annotators())} annotators → {out_dir}",
                  highlight=False)


@annotate_app.command("stats")
def stats(project: ProjectOpt, db: DbOpt = "annotations.db", resamples: int = 1000,
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Labels per annotator, Krippendorff's α, Fleiss' κ, agreement with the others' majority, position bias."""
    from rewardlab.cli.agreement import print_agreement_stats
    from rewardlab.collect.annotation_stats import json_safe, project_stats

    with user_errors():
        store = _store(db)
        result = json_safe(project_stats(store, store.project_id(project), n_resamples=resamples))
        if as_json:
            out.print_json(json.dumps(result))
            return
        out.print(f"{result['project']} ({result['task_type']}): {result['labels']} labels on "
                  f"{result['items_labelled']} items", highlight=False)
        print_agreement_stats(result)
