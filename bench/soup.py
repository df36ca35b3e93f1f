"""Two LoRA runs of one recipe averaged into one run ("model soup"): does averaging two draws
close the gap between them on the held-out forms?

The soup's weight update is exactly the mean of the two runs' updates: PEFT's
`add_weighted_adapter` with combination_type "cat" stacks both adapters (rank r_a + r_b),
each at weight 0.5. Its schema is learned from both runs' training records, as `train` learns
one. Score it like any run: python bench/unseen.py --run OUT --unseen 120 --grounded-only

Usage: python bench/soup.py RUN_A RUN_B --out RUN
"""

from __future__ import annotations

import argparse
import json
import shutil

import slmtune  # noqa: F401  (offline switches first)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs=2, help="two finished LoRA runs of the same base model")
    p.add_argument("--out", required=True, help="the soup's run directory (written)")
    args = p.parse_args()

    import yaml
    from peft import PeftModel

    from slmtune.data.load import load_examples
    from slmtune.models import load_model
    from slmtune.run import RunDir, examples_schema, save_schema

    a, b = (RunDir(r) for r in args.runs)
    if not (a.is_finished() and b.is_finished()):
        p.error(f"not a finished run: {next(r for r in (a, b) if not r.is_finished()).path}")
    meta, other = a.read_meta(), b.read_meta()
    if other["base_model"] != meta["base_model"] or {meta["method"], other["method"]} != {"lora"}:
        p.error("the two runs must be LoRA runs of the same base model")
    out = RunDir(args.out)
    out.path.mkdir(parents=True, exist_ok=True)

    model = load_model(meta["base_model"])
    model = PeftModel.from_pretrained(model, a.adapter, adapter_name="a")
    model.load_adapter(b.adapter, adapter_name="b")
    model.add_weighted_adapter(["a", "b"], [0.5, 0.5], "soup", combination_type="cat")
    model.set_adapter("soup")
    model.delete_adapter("a")
    model.delete_adapter("b")
    model.save_pretrained(out.path / "_adapters")  # PEFT writes a named adapter in a subfolder
    shutil.rmtree(out.adapter, ignore_errors=True)
    (out.path / "_adapters" / "soup").rename(out.adapter)
    shutil.rmtree(out.path / "_adapters")

    configs = [yaml.safe_load(run.config.read_text()) for run in (a, b)]
    examples = [e for c in configs for e in load_examples(c["data"], c["format"]).examples]
    save_schema(out.path, examples_schema(examples))
    shutil.copytree(a.tokenizer, out.tokenizer, dirs_exist_ok=True)
    out.meta.write_text(json.dumps({**meta, "soup_of": args.runs}, indent=2))  # last: finished
    print(f"wrote {out.path}")


if __name__ == "__main__":
    main()
