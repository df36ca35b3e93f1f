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
from slmtune.infer.constrain import compiled_grammar
from slmtune.models import load_model
from slmtune.runs import Loaded, is_run_dir, load_for_inference, load_renderer_only


@dataclass
class Served:
    """One name a request's `model` field can pick."""

    name: str
    view: Loaded  # tokenizer, renderer, system prompt, schema; .model is the shared model
    adapter: str | None  # PEFT adapter name, None = the model as loaded (merged or base)


class ModelPool:
    def __init__(self, primary: str, adapters: dict[str, str], name: str | None = None):
        self.names: dict[str, Served] = {}
        primary_name = name or Path(primary.rstrip("/")).name
        if not adapters:
            loaded = load_for_inference(primary)
            self.model = loaded.model
            self.names[primary_name] = Served(primary_name, loaded, None)
        else:
            self.model = self._multi_adapter(primary, primary_name, adapters)
        self.default = primary_name
        # load_model gives every tokenizer a pad token (eos when it has none)
        self.pad_token_id = next(iter(self.names.values())).view.tokenizer.pad_token_id
        for served in self.names.values():  # compile grammars now, not on the first request
            if served.view.schema is not None:
                compiled_grammar(served.view, served.view.schema)

    def _multi_adapter(self, primary: str, primary_name: str, adapters: dict[str, str]):
        from peft import PeftModel

        runs = dict(adapters)
        if is_run_dir(primary):
            runs = {primary_name: primary, **runs}
        views = {name: load_renderer_only(ref) for name, ref in runs.items()}
        bases = {Path(v.meta["base_model"]).resolve() for v in views.values()}
        if not is_run_dir(primary):
            bases.add(Path(load_renderer_only(primary).meta["base_model"]).resolve())
        if len(bases) != 1:
            raise ConfigError("--adapter runs must all be fine-tunes of the same base model")
        for name, ref in runs.items():
            if views[name].meta.get("method") == "full":
                raise ConfigError(f"--adapter {name}={ref}: a full fine-tune has no adapter")
        model = load_model(next(iter(bases)))
        first, *rest = runs.items()
        model = PeftModel.from_pretrained(model, Path(first[1]) / "adapter", adapter_name=first[0])
        for name, ref in rest:
            model.load_adapter(Path(ref) / "adapter", adapter_name=name)
        model.eval()
        for name, view in views.items():
            view.model = model
            self.names[name] = Served(name, view, name)
        if not is_run_dir(primary):  # the plain base model is servable too
            view = load_renderer_only(primary)
            view.model = model
            self.names[primary_name] = Served(primary_name, view, None)
        return model

    def get(self, name: str | None) -> Served | None:
        return self.names.get(name or self.default)
