"""The documented accelerate configs load with accelerate's own config reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig
from accelerate.utils import DistributedType

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "accelerate"


@pytest.mark.parametrize(
    "name, kind",
    [
        ("ddp_cpu.yaml", DistributedType.MULTI_CPU),
        ("fsdp.yaml", DistributedType.FSDP),
        ("deepspeed_zero2.yaml", DistributedType.DEEPSPEED),
    ],
)
def test_config_loads(name, kind):
    config = ClusterConfig.from_yaml_file(CONFIGS / name)
    assert config.distributed_type == kind and config.num_processes >= 2
