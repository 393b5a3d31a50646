import subprocess
import sys

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell


def test_tokenize_magic_shows_tokens_labels_and_mask(ip):
    res = ip.run_cell('%%tokenize --model tiny-llama --out toks\n{"instruction": "Say hi", "output": "hi"}').result
    assert res.template == "alpaca"
    assert ip.user_ns["toks"] is res
    df = res.to_pandas()
    assert list(df.columns) == ["position", "token", "id", "label", "predicts", "in_loss"]
    assert "".join(df[df.in_loss].token) == "hi<|im_end|>"
    assert (
        df.label.iloc[:-1].where(df.label.iloc[:-1] != -100).dropna()
        == df.id.shift(-1).where(df.label != -100).dropna()
    ).all()
    html = res._repr_html_()
    assert "in the loss" in html and "<table" in html
    assert repr(res).startswith("TokenizeResult(model='tiny-llama', template='alpaca'")


def test_tokenize_magic_text_fallback_and_template_flag(ip):
    assert ip.run_cell("%%tokenize -m tiny-llama\nplain words").result.template == "none"
    res = ip.run_cell("%%tokenize -m tiny-llama --template chat\nWhat is 2+2?").result
    assert res.template == "chat" and res.n_loss_tokens == 0  # a question alone: nothing to learn yet
    assert ip.run_cell('%%tokenize -m tiny-llama --template none\n{"not": "parsed"}').result.template == "none"


def test_tokenize_uses_a_variables_tokenizer(ip):
    from nbllm import models

    class Holder:
        tokenizer = models.byte_tokenizer()

    ip.user_ns["trained"] = Holder()
    assert ip.run_cell("%%tokenize --model trained\nabc").result.n_tokens == 4
    ip.user_ns["nothing"] = 42
    with pytest.raises(UsageError, match="no .tokenizer"):
        ip.run_cell("%%tokenize --model nothing\nabc")


def test_html_escapes_cell_text(ip):
    html = ip.run_cell("%%tokenize -m tiny-llama\n<script>alert(1)</script>").result._repr_html_()
    assert "<script>" not in html and "&lt;" in html


@pytest.mark.parametrize(
    "cell, message",
    [
        ("%%tokenize --nope\nx", "unrecognized arguments: --nope"),
        ("%%tokenize --model nosuch\nx", "unknown model 'nosuch'"),
        ("%%tokenize --model ./no/such/dir/\nx", "unknown model"),
        ('%%tokenize -m tiny-llama\n{"instruction": "x",', "not valid JSON"),
        ("%%tokenize\n   \n", "cell is empty"),
        ('%%tokenize -m tiny-llama\n{"foo": 1}', "cannot tell the format"),
        ("%%tokenize -m tiny-llama --template bogus\nx", "invalid choice"),
        ("%%tokenize -m tiny-llama --max-length 0\nx", "max_length must be > 0"),
    ],
)
def test_bad_input_is_one_usage_error(ip, cell, message):
    with pytest.raises(UsageError, match=message):
        ip.run_cell(cell)
    assert ip.run_cell("1 + 1").result == 2  # the shell is still usable


def test_missing_chat_template_names_the_model(ip):
    from nbllm import models

    def no_template():
        tok = models.byte_tokenizer()
        tok.chat_template = None
        return tok

    models.register("tiny-plain", load=models.tiny_llama, load_tokenizer=no_template)
    try:
        with pytest.raises(UsageError, match="model 'tiny-plain'.*no chat template"):
            ip.run_cell("%%tokenize --model tiny-plain --template chat\nhi")
    finally:
        models.unregister("tiny-plain")


def test_usage_error_prints_one_line_without_traceback(capsys):
    shell = InteractiveShell()  # a plain shell, as a notebook kernel has (not the re-raising test one)
    shell.extension_manager.load_extension("nbllm")
    shell.run_cell("%%tokenize --model nosuch\nx")
    captured = capsys.readouterr()
    out = (captured.out + captured.err).strip()
    assert out.startswith("UsageError: ModelError: unknown model 'nosuch'")
    assert "\n" not in out and "Traceback" not in out


def test_help_lists_flags(ip):
    from nbllm.magics import NbllmMagics

    doc = NbllmMagics.tokenize_magic.__doc__
    assert "--template" in doc and "--model" in doc and "shifted by one" in doc


def test_info_magic(ip):
    info = ip.run_cell("%nbllm").result
    text = repr(info)
    assert "device: cpu (float32)" in text and "tiny-llama" in text and "smollm2" in text


def test_load_ext_does_not_import_torch():
    code = (
        "import sys; from IPython.core.interactiveshell import InteractiveShell as S; "
        "S.instance().extension_manager.load_extension('nbllm'); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
