"""Entry points: build a trace from a spec, or resolve whatever the user named (preset, trace file, config file)."""

from __future__ import annotations

import os

from workloads.spec import ModelSpec, get_spec
from workloads.trace import Trace
from workloads.trace_io import read_json_object


def _check_size(what: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")


def build_trace(spec: ModelSpec | str, batch: int | None = None, seq_len: int | None = None) -> Trace:
    """One training step of `spec` (a ModelSpec or preset name) at the given batch (sequences) and sequence length."""
    from workloads.blocks import ModelBuilder

    if isinstance(spec, str):
        spec = get_spec(spec)
    _check_size("batch", batch)
    _check_size("seq_len", seq_len)
    batch = batch or spec.default_batch
    seq_len = seq_len or spec.default_seq_len
    if spec.positional == "learned" and seq_len > spec.max_positions:
        raise ValueError(f"seq_len {seq_len} exceeds the {spec.max_positions} learned positions of {spec.name!r}")
    builder = ModelBuilder(spec, batch, seq_len)
    builder.build()
    return builder.finish()


def resolve_workload(source: str, batch: int | None = None, seq_len: int | None = None) -> Trace:
    """A preset name, a trace .json, a Hugging Face config.json (or a directory holding one), a dsqsim model
    spec (.toml or .json with ModelSpec fields), or `path/to/file.py:FUNCTION` (a PyTorch capture)."""
    _check_size("batch", batch)
    _check_size("seq_len", seq_len)
    if not isinstance(source, str) or not source:
        raise ValueError("workload must be a preset name or a file path")
    from workloads.capture import capture_from_file, split_capture_source

    if split_capture_source(source):
        return capture_from_file(source, batch, seq_len)
    if not os.path.exists(source):
        if source.endswith((".json", ".toml")) or os.sep in source:
            raise OSError(f"workload file not found: {source}")
        return build_trace(get_spec(source), batch, seq_len)
    return build_trace_from_file(source, batch, seq_len)


def build_trace_from_file(path: str, batch: int | None, seq_len: int | None) -> Trace:
    from workloads.hf_config import spec_from_hf_config

    if os.path.isdir(path):
        config = os.path.join(path, "config.json")
        if not os.path.isfile(config):
            raise OSError(f"directory {path} holds no config.json")
        return build_trace(spec_from_hf_config(config), batch, seq_len)
    if path.endswith(".toml"):
        return build_trace(spec_from_file(path), batch, seq_len)
    data = read_json_object(path)
    if "schema_version" in data or "ops" in data:
        from workloads.trace_io import trace_from_dict

        trace = trace_from_dict(data, path)
        if (batch and batch != trace.batch) or (seq_len and seq_len != trace.seq_len):
            raise ValueError(f"trace file {path} is fixed at batch {trace.batch}, seq_len {trace.seq_len}; "
                             "use a preset or config.json to change sizes")
        return trace
    if "model_type" in data or "architectures" in data:
        return build_trace(spec_from_hf_config(path), batch, seq_len)
    return build_trace(ModelSpec.from_dict(data, path), batch, seq_len)


def spec_from_file(path: str) -> ModelSpec:
    """A dsqsim model spec from a .toml or .json file with ModelSpec fields."""
    if path.endswith(".toml"):
        import tomllib

        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML ({exc})") from None
    else:
        data = read_json_object(path)
    return ModelSpec.from_dict(data, path)
