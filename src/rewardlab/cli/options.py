"""Option types shared by several commands, each defined once, and the link from options to config defaults.

A command whose settings live in a library config dataclass takes its defaults from it through
`config_defaults`, so a default exists in exactly one place (tests/cli/test_defaults.py checks every command).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from rewardlab.errors import RewardlabError

# ------------------------------------------------------------------ everywhere
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
EncoderOpt = Annotated[str, typer.Option(help="Encoder spec (see `rewardlab encoders`), e.g. minilm:int8, minilm, st:PATH.")]
CacheDir = Annotated[Path | None, typer.Option(help="Embedding cache directory (default: user cache dir).")]
SeedOpt = Annotated[int, typer.Option(help="Random seed (results are deterministic given it).")]
WorkersOpt = Annotated[int, typer.Option(help="Processes for the cross-validation's fits: 0 = one per core, 1 = none "
                                              "(in this process). The numbers are the same either way.")]
DeviceOpt = Annotated[str, typer.Option(help="Where the model runs: auto (a CUDA GPU when there is one, else the "
                                            "CPU), cpu, cuda or cuda:N.")]
RayOpt = Annotated[str | None, typer.Option(
    "--ray", metavar="ADDRESS",
    help="Embed the texts missing from the cache on a Ray cluster (Ray Data, one encoder per actor, GPU actors when "
         "the cluster has GPUs): 'local' starts Ray on this machine, 'auto' joins the cluster `ray start` runs here, "
         "HOST:PORT a head node elsewhere. Same vectors, same cache. Where the command cross-validates or runs a "
         "study, its fits run there too, as Ray tasks (same numbers). Needs pip install 'rewardlab[ray]'.")]

# ------------------------------------------------------------------ feedback data
DataArg = Annotated[str, typer.Argument(help="A feedback file/directory, or a dataset name from `rewardlab datasets`.")]
FormatOpt = Annotated[str, typer.Option("--format", help="auto, hh, trl, rewardlab or mapped.")]
MapOpt = Annotated[str | None, typer.Option("--map", help="Column mapping, e.g. prompt=input,a=output_1,b=output_2,label=label")]
LabelValuesOpt = Annotated[str | None, typer.Option(help="Label cell values, e.g. '1=a,2=b,0=tie'.")]
OnEmptyOpt = Annotated[str | None, typer.Option(help="'error', or 'skip' (counted) rows whose response text is empty. "
                                                    "Default: error for a file; for a dataset name, its own policy "
                                                    "(skip where `rewardlab datasets` marks known empty rows).")]
OnErrorOpt = Annotated[str, typer.Option(help="'error' (stop, naming file, row and field), or 'skip' rows that cannot "
                                              "be read (a wrong type, a missing field, a bad label): counted, with "
                                              "examples, in the notes.")]
LimitOpt = Annotated[int | None, typer.Option(help="Read only the first N rows.")]
FeaturesOpt = Annotated[str, typer.Option(help="response, prompt+response, interaction (prompt and response embedded "
                                                "apart); joint (prompt end + response start embedded together, "
                                                "fitted to the encoder's token limit, beside the response) or "
                                                "joint-only.")]

# ------------------------------------------------------------------ prompts and candidates
PromptsFileArg = Annotated[Path, typer.Argument(help="Prompts: a .txt (one per line) or a record file with --field.")]
FieldOpt = Annotated[str, typer.Option(help="The prompt field of a record file.")]
LimitPromptsOpt = Annotated[int | None, typer.Option(help="Use only the first N prompts.")]
CandidatesArg = Annotated[str, typer.Argument(help="alpaca-eval, gsm8k (shared data) or a candidate JSONL file.")]
ExcludeOpt = Annotated[str, typer.Option(help="Comma-separated candidate sources to leave out, e.g. NullModel.")]

# ------------------------------------------------------------------ reward models
HeadParamOpt = Annotated[list[str] | None, typer.Option(
    "--head-param", metavar="NAME=VALUE",
    help="A head parameter, repeatable: e.g. length_debias=true (fit reward + a length term, score without it), "
         "balance_length=true (longer-wins and shorter-wins pairs weigh the same), hidden=512, dropout=0.2. Values "
         "are JSON (true, 3, 0.1) or else text.")]
ModelArg = Annotated[Path, typer.Argument(help="A trained reward model directory.")]
RewardModelOpt = Annotated[Path, typer.Option("--reward-model", help="A trained reward model directory.")]
AllowExternalEncoderOpt = Annotated[bool, typer.Option(
    "--allow-external-encoder",
    help="Load a model whose config names an encoder path outside the model directory (e.g. hf-last:/some/dir). "
         "Off by default: a model from elsewhere should not point at files on this machine. Registered encoders "
         "(minilm:int8, hf-last:smollm2, ...) are not paths and need no flag.")]
StrategyOpt = Annotated[str, typer.Option(help="argmax, soft (sample ∝ exp(r/T)) or conservative (ensembles).")]
ConservativeOpt = Annotated[str, typer.Option(help="conservative: min or lcb.")]
LamOpt = Annotated[float, typer.Option(help="conservative lcb: mean − λ·std.")]
PromptFormatOpt = Annotated[str, typer.Option(help="How the reward model sees a prompt: last-user (the last user "
                                                   "message: a plain prompt as is) or hh (HH-RLHF dialogue text, "
                                                   "for models trained on HH-RLHF).")]

# ------------------------------------------------------------------ LLMs (local or a server)
ModelOpt = Annotated[Path | None, typer.Option("--model", help="A Hugging Face model folder or a .gguf file "
                                                               "(default: SmolLM2-135M-Instruct GGUF).")]
GgufOpt = Annotated[str | None, typer.Option("--gguf", help="A .gguf file, or with --model the file's name in that folder.")]
BatchOpt = Annotated[int, typer.Option(help="Prompts per batch (local: per forward pass).")]
BaseUrlOpt = Annotated[str | None, typer.Option(help="An OpenAI-compatible server, e.g. http://127.0.0.1:8001/v1 "
                                                    "(then --model-name is needed).")]
ModelNameOpt = Annotated[str | None, typer.Option(help="The model name the server knows.")]
ApiKeyOpt = Annotated[str, typer.Option(envvar="OPENAI_API_KEY", help="API key for --base-url.")]
ConcurrencyOpt = Annotated[int, typer.Option(help="--base-url: requests in flight at once.")]
TimeoutOpt = Annotated[float, typer.Option(help="--base-url: seconds per request.")]


class _FromConfig:
    """Marks a parameter whose default comes from the command's config dataclass."""

    def __repr__(self) -> str:
        return "FROM_CONFIG"


FROM_CONFIG: Any = _FromConfig()
F = TypeVar("F", bound=Callable[..., Any])


def library_defaults(source: Any) -> dict[str, Any]:
    """Defaults by name of a config dataclass (class or instance) or of a library function's keyword arguments."""
    if dataclasses.is_dataclass(source):
        if isinstance(source, type):
            defaults = {}
            for field in dataclasses.fields(source):
                if field.default is not dataclasses.MISSING:
                    defaults[field.name] = field.default
                elif field.default_factory is not dataclasses.MISSING:
                    defaults[field.name] = field.default_factory()
            return defaults
        return {field.name: getattr(source, field.name) for field in dataclasses.fields(source)}
    return {name: p.default for name, p in inspect.signature(source).parameters.items()
            if p.default is not inspect.Parameter.empty}


def source_name(source: Any) -> str:
    return getattr(source, "__qualname__", None) or type(source).__qualname__


def config_defaults(*sources: Any, **renames: str) -> Callable[[F], F]:
    """Fill every ``FROM_CONFIG`` default from the first source that has it (``renames``: option → library name).

    Sources are config dataclasses (classes or instances) or library functions (their keyword defaults). The
    command records them in ``__rewardlab_defaults__`` so the defaults test can check that no option of the command
    shadows a library default with a value of its own.
    """

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        tables = [library_defaults(source) for source in sources]
        parameters = []
        for parameter in signature.parameters.values():
            if parameter.default is FROM_CONFIG:
                name = renames.get(parameter.name, parameter.name)
                owners = [table for table in tables if name in table]
                if not owners:
                    raise TypeError(f"{command.__name__}: option {parameter.name!r} has no default in "
                                    f"{[source_name(s) for s in sources]}")
                parameter = parameter.replace(default=owners[0][name])
            parameters.append(parameter)
        command.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        command.__rewardlab_defaults__ = (sources, dict(renames))  # type: ignore[attr-defined]
        return command

    return decorate


def option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    """One option for `with_options`: a parameter as a function signature would declare it."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def with_options(*groups: Sequence[inspect.Parameter]) -> Callable[[F], F]:
    """Add a group of options shared by several commands to a command's signature; the command takes them as
    ``**kwargs``. A group is declared once, so commands that share it cannot drift apart."""

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        added = [p for group in groups for p in group]
        clash = {p.name for p in own} & {p.name for p in added}
        if clash:
            raise TypeError(f"{command.__name__}: options {sorted(clash)} are declared twice")
        keyword_only = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own
                        if p.kind is inspect.Parameter.KEYWORD_ONLY]
        positional = [p for p in own if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        command.__signature__ = signature.replace(parameters=positional + keyword_only + added)  # type: ignore[attr-defined]
        return command

    return decorate


#: how a feedback file is read: `train`, `evaluate` and `embed` take these
DATA_OPTIONS = (
    option("format", FormatOpt, "auto"),
    option("map", MapOpt, None),
    option("label_values", LabelValuesOpt, None),
    option("on_empty", OnEmptyOpt, None),  # None: error for a file, a named dataset's own policy
    option("on_error", OnErrorOpt, "error"),  # as load_source: stop at the first bad row
    option("limit", LimitOpt, None),
)

#: which LLM samples: a local model or an OpenAI-compatible server (`generate run`, `bon`); defaults from
#: `rewardlab.generate.factory.make_generator`
GENERATOR_OPTIONS = (
    option("model", ModelOpt, None),
    option("gguf", GgufOpt, None),
    option("base_url", BaseUrlOpt, None),
    option("model_name", ModelNameOpt, None),
    option("api_key", ApiKeyOpt, FROM_CONFIG),
    option("batch_size", BatchOpt, FROM_CONFIG),
    option("concurrency", ConcurrencyOpt, FROM_CONFIG),
    option("timeout", TimeoutOpt, FROM_CONFIG),
    option("device", DeviceOpt, FROM_CONFIG),
)


def split_list(text: str, cast: Callable[[str], Any], option: str) -> tuple[Any, ...]:
    """A comma-separated option value as a tuple, with an error that names the option."""
    try:
        return tuple(cast(p.strip()) for p in text.split(",") if p.strip())
    except ValueError:
        raise RewardlabError(f"{option}: cannot read {text!r} as a comma-separated list") from None


def format_estimate(estimate: dict[str, Any] | None, signed: bool = False, ci: bool = True) -> str:
    """``0.623 [0.604, 0.641]`` from a JSON estimate (value, ci_low, ci_high); ``—`` when missing."""
    if not estimate or estimate.get("value") is None:
        return "—"
    spec = "+.3f" if signed else ".3f"
    text = format(estimate["value"], spec)
    low, high = estimate.get("ci_low"), estimate.get("ci_high")
    if ci and low is not None and high is not None:
        text += f" [{format(low, spec)}, {format(high, spec)}]"
    return text


def parse_head_params(values: Sequence[str] | None) -> dict[str, Any]:
    """``["length_debias=true", "hidden=512"]`` -> ``{"length_debias": True, "hidden": 512}``; a value that is not
    JSON stays text. Unknown names are caught where the head is built (`make_head` lists the bad one)."""
    import json

    params: dict[str, Any] = {}
    for item in values or []:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise RewardlabError(f"--head-param {item!r}: expected NAME=VALUE, e.g. length_debias=true")
        try:
            params[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[name.strip()] = raw
    return params
