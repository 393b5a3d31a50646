import pytest

from nbllm import models
from nbllm.errors import DataError, TemplateError
from nbllm.tokenization import IGNORE_INDEX, alpaca_prompt, encode, shift_labels


@pytest.fixture(scope="module")
def tok():
    return models.byte_tokenizer()


def loss_text(tokenizer, enc):
    return tokenizer.decode([t for t, keep in zip(enc.input_ids, enc.loss_mask) if keep])


def test_labels_are_inputs_shifted_by_one(tok):
    enc = encode(tok, "abc", template="none")
    assert enc.labels[:-1] == enc.input_ids[1:]
    assert enc.labels[-1] == IGNORE_INDEX
    assert shift_labels([5, 6, 7], [False, False, True]) == [IGNORE_INDEX, 7, IGNORE_INDEX]


def test_alpaca_loss_covers_response_and_eos_only(tok):
    ex = {"instruction": "Add 2 and 3.", "input": "", "output": "5"}
    enc = encode(tok, ex, template="alpaca")
    assert loss_text(tok, enc) == "5<|im_end|>"
    prompt_len = len(tok(alpaca_prompt("Add 2 and 3."))["input_ids"])
    assert not any(enc.loss_mask[:prompt_len])
    assert tok.decode(enc.input_ids).startswith("Below is an instruction")
    assert "### Input:" not in tok.decode(enc.input_ids)
    with_input = encode(tok, {"instruction": "Sum.", "input": "2 3", "output": "5"}, template="alpaca")
    assert "### Input:\n2 3" in tok.decode(with_input.input_ids)


def test_chat_loss_covers_assistant_turns_only(tok):
    ex = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "bye"},
            {"role": "assistant", "content": "Bye."},
        ]
    }
    enc = encode(tok, ex)  # auto -> chat
    assert enc.template == "chat"
    assert loss_text(tok, enc) == "Hello!<|im_end|>\nBye.<|im_end|>\n"
    assert tok.decode(enc.input_ids) == tok.apply_chat_template(ex["messages"], tokenize=False)


def test_train_on_prompt_and_truncation(tok):
    ex = {"instruction": "Say yes.", "output": "yes"}
    full = encode(tok, ex, train_on_prompt=True)
    assert all(full.loss_mask)
    short = encode(tok, ex, max_length=10)
    assert len(short) == 10 and short.truncated and not any(short.loss_mask)


def test_template_auto_detection(tok):
    assert encode(tok, {"text": "raw"}).template == "none"
    assert encode(tok, {"prompt": "Q", "response": "A"}).template == "alpaca"


@pytest.mark.parametrize(
    "example, error",
    [
        ({"foo": "x"}, DataError),
        ({"messages": []}, DataError),
        ({"messages": [{"content": "x"}]}, DataError),
        ({"instruction": 3}, DataError),
        ({"text": "   "}, DataError),
        (["a"], DataError),
    ],
)
def test_bad_examples(tok, example, error):
    with pytest.raises(error):
        encode(tok, example)


def test_chat_needs_a_chat_template(tok):
    tok_without = models.byte_tokenizer()
    tok_without.chat_template = None
    with pytest.raises(TemplateError, match="no chat template"):
        encode(tok_without, "hi", template="chat")


def test_smollm2_tokenizer_masks_with_its_own_chat_template():
    tok = models.load_tokenizer("smollm2")
    ex = {"messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}]}
    enc = encode(tok, ex)
    assert loss_text(tok, enc) == "Paris.<|im_end|>\n"
    assert "You are a helpful AI assistant" in tok.decode(enc.input_ids)  # SmolLM2's default system turn
