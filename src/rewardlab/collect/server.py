"""The annotation web service: a JSON API over the `Store` plus a no-build browser UI.

Every endpoint but ``/api/health`` and ``/api/login`` needs ``Authorization: Bearer <token>``. Annotators see
only projects they are members of and only their own assignments; ``/api/admin/*`` needs the admin role.
The UI renders every text with ``textContent`` and the Content-Security-Policy forbids inline scripts, so
imported response text can never run as code.
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from rewardlab.collect.store import AccessDenied, Store, StoreError, User, open_store
from rewardlab.collect.tasks import LabelError
from rewardlab.serve.limits import BodyLimit, clip

UI_DIR = Path(__file__).parent / "ui"
MAX_BODY_BYTES = 256 * 1024  # counted as the body arrives, chunked or not
#: Ids are 32-bit integers in the database (``sa.Integer``: INTEGER on PostgreSQL); a bigger number is a bad
#: request, not a driver overflow (PostgreSQL's "integer out of range" was a 500).
MAX_ID = 2**31 - 1
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class LoginBody(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class LabelBody(BaseModel):
    assignment_id: int = Field(ge=0, le=MAX_ID)
    value: dict[str, Any]
    seconds: float | None = Field(default=None, ge=0, le=86_400, allow_inf_nan=False, strict=True)  # true is no time


ProjectId = Annotated[int, PathParam(ge=0, le=MAX_ID)]


def safe_filename(name: str, fallback: str) -> str:
    """``name`` as one plain file name: letters, digits, ``.``, ``_`` and ``-`` only, no leading dot, at most 100
    characters (else ``fallback``). A project name is user text: it may be an absolute path, hold ``..`` or CR/LF,
    and must neither steer the export outside its folder nor break the Content-Disposition header."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:100]
    return stem or fallback


def current_user(request: Request, authorization: Annotated[str | None, Header()] = None) -> User:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    user = request.app.state.store.user_by_token(authorization.removeprefix("Bearer ").strip())
    if user is None:
        raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
    return user


def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise HTTPException(403, "admins only")
    return user


UserDep = Annotated[User, Depends(current_user)]
AdminDep = Annotated[User, Depends(admin_user)]


def create_app(store: Store | str) -> FastAPI:
    """The app over ``store`` (a `Store` or a database URL/path)."""
    store = open_store(store) if isinstance(store, str) else store
    app = FastAPI(title="rewardlab annotate", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    # outermost, so an over-limit body is cut off before any other layer reads it
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES, headers=SECURITY_HEADERS)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422 without the ``input`` it would echo back (a 200 KB field came back whole)."""
        errors = [{"loc": [clip(str(part), 60) for part in error.get("loc", ())], "msg": clip(str(error.get("msg", ""))),
                   "type": error.get("type")} for error in exc.errors()[:5]]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(AccessDenied)
    async def _denied(_: Request, exc: AccessDenied) -> JSONResponse:
        return JSONResponse({"detail": clip(str(exc))}, status_code=404)

    @app.exception_handler(LabelError)
    async def _bad_label(_: Request, exc: LabelError) -> JSONResponse:
        return JSONResponse({"detail": clip(str(exc))}, status_code=422)

    @app.exception_handler(StoreError)
    async def _bad_request(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": clip(str(exc))}, status_code=400)

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        """Unauthenticated, so it says nothing about the data; it does check the database answers."""
        store.count_labels()
        return {"ok": True}

    @app.post("/api/login")
    def login(body: LoginBody) -> dict[str, Any]:
        user = store.user_by_token(body.token)
        if user is None:
            raise HTTPException(401, "unknown token")
        return {"name": user.name, "role": user.role}

    @app.get("/api/me")
    def me(user: UserDep) -> dict[str, Any]:
        return {"name": user.name, "role": user.role, "projects": store.projects_of(user)}

    @app.get("/api/projects/{project_id}")
    def project(project_id: ProjectId, user: UserDep) -> dict[str, Any]:
        return {**store.project(project_id, user), "progress": store.progress(project_id, user)}

    @app.post("/api/projects/{project_id}/next")
    def next_item(project_id: ProjectId, user: UserDep) -> dict[str, Any]:
        assignment = store.next_assignment(project_id, user)
        return {"done": assignment is None, "assignment": assignment, "progress": store.progress(project_id, user)}

    @app.post("/api/labels")
    def submit(body: LabelBody, user: UserDep) -> dict[str, Any]:
        label_id, created = store.submit(body.assignment_id, user, body.value, body.seconds)
        return {"label_id": label_id, "created": created}

    @app.get("/api/admin/projects/{project_id}/stats")
    def stats(project_id: ProjectId, _: AdminDep) -> dict[str, Any]:
        from rewardlab.collect.annotation_stats import json_safe, project_stats

        return json_safe(project_stats(store, project_id, n_resamples=500))

    @app.get("/api/admin/projects/{project_id}/export")
    def export(project_id: ProjectId, _: AdminDep) -> Response:
        """The project's labels as a zipped rewardlab dataset directory (`rewardlab train` reads it unzipped)."""
        from rewardlab.collect.export import export_project
        from rewardlab.data.parquet import write_parquet

        stem = safe_filename(store.project_settings(project_id)["name"], f"project-{project_id}")
        buffer = io.BytesIO()
        with tempfile.TemporaryDirectory() as tmp:
            directory = write_parquet(export_project(store, project_id), Path(tmp) / stem)
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(directory.rglob("*")):
                    archive.write(path, path.relative_to(directory.parent).as_posix())
        filename = f"{stem}.zip"
        return Response(buffer.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(UI_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=UI_DIR), name="static")
    return app


def serve(db: str, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the service with uvicorn (blocking)."""
    import uvicorn

    store = open_store(db)  # create or upgrade the schema once, before serving
    store.engine.dispose()
    if workers > 1:
        import os

        os.environ["REWARDLAB_ANNOTATE_DB"] = db
        uvicorn.run("rewardlab.collect.server:app_from_env", host=host, port=port, workers=workers,
                    factory=True, log_level="warning")
    else:
        uvicorn.run(create_app(db), host=host, port=port, log_level="warning")


def app_from_env() -> FastAPI:
    """Factory for multi-worker uvicorn: the database URL comes from REWARDLAB_ANNOTATE_DB."""
    import os

    return create_app(os.environ["REWARDLAB_ANNOTATE_DB"])
