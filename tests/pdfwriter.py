"""A minimal PDF writer (text pages, Helvetica) for the shipped corpus and the tests.

python tests/pdfwriter.py     # regenerates nbllm/data/corpus/evaluation_benchmarks.pdf
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def write_pdf(path, pages: list[str], width: int = 88) -> Path:
    """One PDF page per string; paragraphs (blank-line separated) are wrapped at `width` characters."""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        None,
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    kids = []
    for text in pages:
        lines = []
        for para in text.strip().split("\n\n"):
            lines += textwrap.wrap(" ".join(para.split()), width) + [""]
        ops = ["BT", "/F1 11 Tf", "14 TL", "56 780 Td"] + [f"({_escape(ln)}) Tj T*" for ln in lines] + ["ET"]
        stream = "\n".join(ops).encode("latin-1")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode('latin-1')}\nendstream")
        content = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content} 0 R >>"
        )
        kids.append(len(objects))
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path = Path(path)
    path.write_bytes(bytes(out))
    return path


BENCHMARK_PAGES = [
    """
    Evaluating language models: benchmarks (page 1 of 3)

    A model can be evaluated on accuracy (and its opposite, hallucination), on relevance, on bias and
    toxicity, and on the diversity of its outputs. Public benchmarks turn some of these into numbers.

    MMLU asks multiple-choice questions across 57 subjects, from law and medicine to mathematics and
    history. The score is simply the fraction of questions answered correctly. A model picks an answer by
    comparing the likelihood it assigns to each choice, or by generating the letter of its choice.

    HellaSwag tests commonsense sentence completion: given the start of a short scene, the model must
    pick the most plausible ending among four, where the wrong endings were written to fool models.
    """,
    """
    Evaluating language models: benchmarks (page 2 of 3)

    TruthfulQA asks questions that many people answer wrongly because of common misconceptions. It
    measures whether a model repeats popular falsehoods or gives the true answer.

    WinoGrande contains pronoun-resolution problems that need commonsense reasoning: which person or
    object does "it" or "she" refer to in a carefully constructed sentence pair.

    GSM8K is a set of about 8,500 grade school math word problems. Each needs a few steps of
    arithmetic, and only the final number is checked.
    """,
    """
    Evaluating language models: leaderboards (page 3 of 3)

    The Open LLM Leaderboard ranked open models on ARC, HellaSwag, MMLU and TruthfulQA. Over time the
    top scores saturated, and some training sets were found to contain benchmark questions, a problem
    called contamination. Both led to a second version with harder benchmarks.

    Your own evaluation set of prompts and responses, taken from the task you care about, often says
    more than a public benchmark, but it needs thousands of examples to separate similar models. Also
    distinguish model evaluation, which scores the model alone, from system evaluation, which scores the
    whole application with its prompts, retrieval and tools.
    """,
]


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "nbllm" / "data" / "corpus" / "evaluation_benchmarks.pdf"
    print(write_pdf(target, BENCHMARK_PAGES))
