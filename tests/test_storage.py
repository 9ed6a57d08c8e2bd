"""The stored-format traffic model (sim.storage): one stored format per tensor, copies only where they differ."""

import pytest

from sim.counting import count
from sim.policy import get_policy, list_policies
from sim.precision import PrecisionConfig
from sim.storage import resolve
from workloads import build_trace, list_specs


def _builtin_configs() -> set[PrecisionConfig]:
    configs = set()
    for name, _ in list_policies():
        if name.startswith("<"):
            continue
        configs.update(cfg for cfg, _ in get_policy(name).timeline(100))
    return configs


@pytest.fixture(scope="module")
def small_traces():
    # every preset's structure at a small size: the rules depend on the op graph, not on the sizes
    return {name: build_trace(name, batch=1, seq_len=16) for name in list_specs()}


def test_every_tensor_has_one_stored_format(small_traces):
    configs = _builtin_configs()
    assert len(configs) >= 8
    for name, trace in small_traces.items():
        for config in configs:
            acc = count(trace, config).accesses
            per_tensor = acc.groupby("tensor")["fmt"].nunique()
            assert (per_tensor == 1).all(), (name, config.label, per_tensor[per_tensor > 1].index.tolist()[:5])
            storage = resolve(trace, config)
            for t, fmt in acc.groupby("tensor")["fmt"].first().items():  # the format is the tensor's own
                assert storage.formats[t].name == fmt, (name, config.label, t)


def test_fixed16_moves_no_stash_copy(small_traces):
    fixed16 = get_policy("fixed16").config_at(0, 1)
    for name, trace in small_traces.items():
        c = count(trace, fixed16)
        assert "stashed_activation" not in set(c.accesses["role"]), name
        assert c.bytes_by_point["q1"] > 0, name  # backward still reads the saved values: the activations themselves
        # one fixed16 weight copy serves both GEMM points (fixed point has one scale per tensor: no blocking)
        copies = set(c.accesses.loc[c.accesses["role"] == "weight_copy", "tensor"])
        assert copies and all(t.endswith("@q0") for t in copies), name


def test_copies_are_written_only_where_the_format_or_blocking_differs():
    trace = build_trace("tiny-lm")
    fp32 = resolve(trace, PrecisionConfig.uniform("fp32"))
    # fp32 GEMMs read the fp32 master: no weight copy, no stash
    assert all(trace.tensors[a].role in ("weight_copy", "stashed_activation") for a in fp32.aliases)
    assert not any(t.role in ("weight_copy", "stashed_activation") for t in fp32.trace.tensors.values())
    # bfp8 everywhere: same format, but a stash blocked along the tokens (for dW) differs from the activation
    # blocked along the features (for the forward GEMM), and W@q0 (blocked along K) from W@q2 (along N)
    bfp8 = resolve(trace, PrecisionConfig.uniform("bfp8"))
    stash = bfp8.trace.tensors["L0.attn.norm.stash"]  # the input of the q/k/v projections, read by their dW
    assert stash.block_axis == -2 and bfp8.trace.tensors["L0.attn.norm"].block_axis == -1
    assert {"L0.attn.q.W@q0", "L0.attn.q.W@q2"} <= set(bfp8.trace.tensors)
    # a stash read only elementwise (GELU's input) is blocked like its source: the same tensor
    assert bfp8.aliases["L0.ffn.fc1.stash"] == "L0.ffn.fc1"
    # the stash is written by the op that produced the value, in the forward pass
    writers = [op.name for op in bfp8.trace.ops if any(o.tensor == "L0.attn.norm.stash" for o in op.outputs)]
    assert writers == ["L0.attn.norm"]


def test_gradients_are_read_as_stored_and_multiplied_at_q2():
    trace = build_trace("tiny-lm")
    cfg = PrecisionConfig(q0="bfp4", q1="bfp3", q2="bfp4", q3="bfp8")
    c = count(trace, cfg)
    acc = c.accesses
    grad_reads = acc[(acc["point"] == "q2") & (acc["role"] == "activation_grad") & (acc["direction"] == "read")]
    assert len(grad_reads) > 0 and set(grad_reads["fmt"]) == {"bfp8"}  # q3's bytes, not q2's
    ops = c.ops.set_index("name")
    assert (ops.loc["L0.ffn.fc1.dx", "bits_a"], ops.loc["L0.ffn.fc1.dx", "bits_b"]) == (4, 4)  # q2 multipliers
    assert (ops.loc["L0.ffn.fc1.dW", "bits_a"], ops.loc["L0.ffn.fc1.dW", "bits_b"]) == (3, 4)  # q1 x q2
