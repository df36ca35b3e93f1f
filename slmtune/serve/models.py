"""What a server serves: one base model in memory, several named fine-tunes on top of it.

A single run (or plain model) is served with its LoRA merged (fastest). With `--adapter
name=RUN` flags, the base stays unmerged and every run's adapter is loaded into one PEFT
model; each row of a decoding step names its adapter (PEFT's mixed-batch `adapter_names`),
so requests for different adapters share steps, and the base answers with "__base__"
(adapters off). Each name keeps its own renderer (template, system prompt) and schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slmtune.errors import ConfigError
from slmtune.infer.driver import warm_up
from slmtune.models import load_model
from slmtune.run import OpenRun, RunDir, is_run_dir, open_renderer, open_run


@dataclass
class Served:
    """One name a request's `model` field can pick."""

    name: str
    opened: OpenRun  # tokenizer, renderer, system prompt, schema; .model is the shared model
    adapter: str | None  # PEFT adapter name, None = the model as loaded (merged or base)


class ModelPool:
    def __init__(self, primary: str, adapters: dict[str, str], name: str | None = None):
        self.served: dict[str, Served] = {}  # by the name a request's `model` gives
        primary_name = name or Path(primary.rstrip("/")).name
        if not adapters:
            opened = open_run(primary)
            self.model = opened.model
            self.served[primary_name] = Served(primary_name, opened, None)
        else:
            self.model = self._multi_adapter(primary, primary_name, adapters)
        self.default = primary_name
        # load_model gives every tokenizer a pad token (eos when it has none)
        self.pad_token_id = next(iter(self.served.values())).opened.tokenizer.pad_token_id
        for served in self.served.values():
            warm_up(served.opened)

    def _multi_adapter(self, primary: str, primary_name: str, adapters: dict[str, str]):
        from peft import PeftModel

        runs = dict(adapters)
        if is_run_dir(primary):
            runs = {primary_name: primary, **runs}
        opened = {name: open_renderer(ref) for name, ref in runs.items()}
        bases = {Path(o.meta["base_model"]).resolve() for o in opened.values()}
        if not is_run_dir(primary):
            bases.add(Path(open_renderer(primary).meta["base_model"]).resolve())
        if len(bases) != 1:
            raise ConfigError("--adapter runs must all be fine-tunes of the same base model")
        for name, ref in runs.items():
            if opened[name].meta.get("method") == "full":
                raise ConfigError(f"--adapter {name}={ref}: a full fine-tune has no adapter")
        model = load_model(next(iter(bases)))
        first, *rest = runs.items()
        model = PeftModel.from_pretrained(model, RunDir(first[1]).adapter, adapter_name=first[0])
        for name, ref in rest:
            model.load_adapter(RunDir(ref).adapter, adapter_name=name)
        model.eval()
        for name, one in opened.items():
            one.model = model
            self.served[name] = Served(name, one, name)
        if not is_run_dir(primary):  # the plain base model is servable too
            base = open_renderer(primary)
            base.model = model
            self.served[primary_name] = Served(primary_name, base, None)
        return model

    def get(self, name: str | None) -> Served | None:
        return self.served.get(name or self.default)
