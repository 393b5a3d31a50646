import torch
import pytest
from IPython.core.error import UsageError

from nbllm import models
from nbllm.lora import lora_layers

RECS = [{"instruction": f"Add {a} and {b}.", "output": f"{a + b}"} for a in range(5) for b in range(4)]
IDS = torch.tensor([[5, 9, 33, 71, 80, 101, 4]])


def logits(model):
    with torch.no_grad():
        return model(input_ids=IDS).logits


@pytest.fixture
def m(ip):
    ip.run_cell("%lora m --base tiny-llama --r 4")
    return ip.user_ns["m"]


def test_new_adapter_equals_the_base(ip):
    base, _ = models.tiny_llama()
    ip.run_cell("%lora fresh --base tiny-llama --r 4")
    model = ip.user_ns["fresh"].model
    assert torch.equal(logits(model), logits(base))
    assert all(torch.count_nonzero(layer.lora_B["default"].weight) == 0 for _, layer in lora_layers(model))


def test_inspect_counts_parameters(ip, m):
    report = ip.run_cell("%lora m --inspect").result
    df = report.to_pandas()
    assert list(df.module) == [f"model.layers.{i}.self_attn.{p}_proj" for i in range(2) for p in ("q", "v")]
    hidden, kv = 64, 32  # tiny-llama: q is 64x64, v is 32x64 (2 of 4 heads carry keys/values)
    assert list(df.lora_params) == [4 * (hidden + hidden), 4 * (hidden + kv)] * 2
    s = report.summary()
    assert s["trainable"] == df.lora_params.sum() and s["reduction_vs_full_ft"] > 50
    assert s["pct_of_model"] == round(100 * s["trainable"] / report.base_params, 4)


@pytest.mark.slow
def test_merge_equals_w0_plus_scaled_ba_and_unmerge_restores(ip, m):
    model = m.model
    with torch.no_grad():
        for _, layer in lora_layers(model):
            layer.lora_B["default"].weight.normal_(0, 0.5)
    name, layer = lora_layers(model)[0]
    w0 = layer.get_base_layer().weight.detach().clone()
    expected = w0 + layer.scaling["default"] * layer.lora_B["default"].weight @ layer.lora_A["default"].weight
    before = logits(model)
    assert not torch.allclose(before, logits(models.tiny_llama()[0]))
    ip.run_cell("%lora m --merge")
    torch.testing.assert_close(layer.get_base_layer().weight, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(logits(model), before, atol=1e-5, rtol=0)
    with pytest.raises(UsageError, match="already merged"):
        ip.run_cell("%lora m --merge")
    ip.run_cell("%lora m --unmerge")
    torch.testing.assert_close(layer.get_base_layer().weight, w0, atol=1e-6, rtol=0)
    with pytest.raises(UsageError, match="not merged"):
        ip.run_cell("%lora m --unmerge")


@pytest.mark.slow
def test_save_load_and_switch_adapters(ip, m, tmp_path):
    with torch.no_grad():
        for _, layer in lora_layers(m.model):
            layer.lora_B["default"].weight.normal_(0, 0.5)
    tuned = logits(m.model)
    ip.run_cell(f"%lora m --save {tmp_path}/task1")
    files = {p.name: p.stat().st_size for p in (tmp_path / "task1").iterdir()}
    assert "adapter_model.safetensors" in files and files["adapter_model.safetensors"] < 100_000
    from safetensors.torch import load_file

    assert all("lora_" in k for k in load_file(tmp_path / "task1" / "adapter_model.safetensors"))
    ip.run_cell(f"%lora other --base tiny-llama --load {tmp_path}/task1 --name task1")
    other = ip.user_ns["other"]
    torch.testing.assert_close(logits(other.model), tuned, atol=1e-6, rtol=0)
    ip.run_cell("%lora other --r 2 --name task2")  # a second, fresh adapter on the same base
    report = ip.run_cell("%lora other --inspect").result
    assert report.adapters == ["task1", "task2"] and report.active == "task2"
    torch.testing.assert_close(logits(other.model), logits(models.tiny_llama()[0]), atol=1e-6, rtol=0)
    ip.run_cell("%lora other --use task1")
    torch.testing.assert_close(logits(other.model), tuned, atol=1e-6, rtol=0)
    with pytest.raises(UsageError, match="no adapter named 'nope'; loaded: task1, task2"):
        ip.run_cell("%lora other --use nope")


def test_adapter_for_another_base_is_refused(ip, m, tmp_path):
    ip.run_cell(f"%lora m --save {tmp_path}/a")
    models.register("tiny-wide", load=lambda: models.tiny_llama(hidden=128), load_tokenizer=models.byte_tokenizer)
    try:
        with pytest.raises(UsageError, match="made for base model 'tiny-llama', not 'tiny-wide'"):
            ip.run_cell(f"%lora wide --base tiny-wide --load {tmp_path}/a")
        assert "wide" not in ip.user_ns  # a failed line binds nothing
    finally:
        models.unregister("tiny-wide")


@pytest.mark.parametrize(
    "line, message",
    [
        ("%lora m --base tiny-llama --r 0", "--r must be > 0"),
        ("%lora m --base tiny-llama --alpha -1", "--alpha must be > 0"),
        ("%lora m --base tiny-llama --targets q_proj,qq_proj", "qq_proj match no module.*q_proj"),
        ("%lora m --base tiny-llama --merge", "no LoRA adapters"),
        ("%lora m --base tiny-llama --inspect", "no LoRA adapters"),
        ("%lora nothing_here --inspect", "no variable 'nothing_here'"),
        ("%lora m --base tiny-llama --merge --unmerge", "one action"),
        ("%lora m --base tiny-llama --load /no/such/adapter", "holds no adapter"),
        ("%lora m --base tiny-llama --sweep 1,x", "ranks like"),
        ("%lora m --base tiny-llama --sweep 0,2", "positive ranks"),
    ],
)
def test_bad_input(ip, line, message):
    before = ip.user_ns.get("m")
    adapters = sorted(getattr(before.model, "peft_config", {})) if before is not None else None
    with pytest.raises(UsageError, match=message):
        ip.run_cell(line)
    if before is not None:  # the failed line left m as it was: no fresh base bound, no adapter added
        assert ip.user_ns["m"] is before and sorted(getattr(before.model, "peft_config", {})) == adapters


@pytest.mark.slow
def test_sft_trains_an_attached_adapter(ip):
    ip.user_ns["recs"] = RECS
    ip.run_cell("%lora m4 --base tiny-llama --r 4 --targets all-linear")
    trainable = ip.run_cell("%lora m4 --inspect").result.trainable
    res = ip.run_cell("%sft --model m4 --data recs --max-steps 2 --batch-size 4 --samples 0 --progress none").result
    assert res.stats["trainable"] == trainable
    assert any(torch.count_nonzero(layer.lora_B["default"].weight) for _, layer in lora_layers(res.model))


@pytest.mark.slow
def test_rank_sweep(ip):
    ip.user_ns["recs"] = RECS
    ip.run_cell("%lora base --base tiny-llama")
    sweep = ip.run_cell("%lora base --sweep 1,4 --data recs --max-steps 2 --batch-size 4").result
    df = sweep.to_pandas()
    assert list(df.r) == [1, 4] and df.trainable.iloc[1] == 4 * df.trainable.iloc[0]
    assert df.val_loss.notna().all() and "r" in repr(sweep) and "<img" in sweep._repr_html_()
    slower = ip.run_cell("%lora base --sweep 1 --data recs --max-steps 2 --batch-size 4 --lr 1e-9").result
    assert slower.rows[0]["final_loss"] != df.final_loss.iloc[0]  # --lr reaches the runs


@pytest.mark.parametrize(
    "line",
    [
        "%lora keep --base tiny-llama --r 0",
        "%lora keep --base tiny-llama --merge",
        "%lora keep --base tiny-llama --targets nope",
    ],
)
def test_a_failed_line_leaves_the_variable_as_it_was(ip, line):
    ip.run_cell("%lora keep --base tiny-llama --r 4")
    before = ip.user_ns["keep"]
    with pytest.raises(UsageError):
        ip.run_cell(line)
    assert ip.user_ns["keep"] is before and ip.run_cell("%lora keep --inspect").result.rows


def test_a_damaged_adapter_is_named_and_rolled_back(ip, m, tmp_path):
    ip.run_cell(f"%lora m --save {tmp_path}/good")
    (tmp_path / "good" / "adapter_model.safetensors").rename(tmp_path / "weights.bak")
    with pytest.raises(UsageError, match="incomplete: adapter_model.safetensors is missing"):
        ip.run_cell(f"%lora m --load {tmp_path}/good --name broken")
    (tmp_path / "good" / "adapter_model.safetensors").write_bytes(b"\x00garbage")
    names = sorted(ip.user_ns["m"].model.peft_config)
    with pytest.raises(UsageError, match="could not be loaded"):
        ip.run_cell(f"%lora m --load {tmp_path}/good --name broken")
    assert sorted(ip.user_ns["m"].model.peft_config) == names  # no half-registered adapter left


def test_saving_one_adapter_keeps_the_others_in_the_same_folder(ip, tmp_path):
    # lab 04: the task adapter in DIR/task, then a named one into DIR itself (peft's DIR/style)
    ip.run_cell("%lora keep_both --base tiny-llama --r 2")
    ip.run_cell(f"%lora keep_both --save '{tmp_path}/task'")
    ip.run_cell("%lora keep_both --r 2 --name style")
    ip.run_cell("%lora keep_both --use style")
    ip.run_cell(f"%lora keep_both --save '{tmp_path}'")
    assert (tmp_path / "task" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "style" / "adapter_model.safetensors").is_file()
    ip.run_cell(f"%lora keep_loaded --base tiny-llama --load '{tmp_path}/task' --name task")
    ip.run_cell(f"%lora keep_loaded --load '{tmp_path}/style' --name style")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
