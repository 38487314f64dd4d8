"""Tiny random Hugging Face models built at test time, for every code path a hub model takes.

A BERT classifier/encoder with a hand-written vocab and a wav2vec2 audio classifier, built from configs and
saved with ``save_pretrained``: no download, a few hundred KB each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import transformers

WORDS = (
    "i am so happy this is wonderful hate you get out miss her much can't stop crying the meeting at noon on "
    "friday love great angry sad afraid wow what a day ! , . ' ? hi there do believe it"
).split()
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "emotag" / "models" / "default"
DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def _tokenizer(tmp: Path) -> Any:
    # transformers 5 folded BertTokenizerFast into BertTokenizer (tokenizers-backed); 4.x has both.
    tok_cls = getattr(transformers, "BertTokenizerFast", None) or transformers.BertTokenizer
    vocab = tmp / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(WORDS)]) + "\n")
    return tok_cls(vocab_file=str(vocab), do_lower_case=True)


def _config(n_vocab: int, **kw: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        vocab_size=n_vocab,
        max_position_embeddings=128,
        **kw,
    )


def tiny_classifier(tmp: Path, id2label: dict[int, str]) -> Path:
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    tok = _tokenizer(tmp)
    cfg = _config(
        len(tok), num_labels=len(id2label), id2label=id2label, label2id={v: k for k, v in id2label.items()}
    )
    out = tmp / "clf"
    BertForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_encoder(tmp: Path) -> Path:
    from transformers import BertModel

    torch.manual_seed(0)
    tok = _tokenizer(tmp)
    out = tmp / "enc"
    BertModel(_config(len(tok))).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_mpnet_encoder(tmp: Path) -> Path:
    """A random MPNet encoder (relative position bias in every layer) + tokenizer saved in ``tmp``.

    The bias table is drawn wide (std 3, not the 0.02 of a fresh init) so that running its layers without
    it visibly changes the states, as it does in a trained MPNet.
    """
    from transformers import MPNetConfig, MPNetModel

    torch.manual_seed(0)
    tok_cls = getattr(transformers, "MPNetTokenizerFast", None) or transformers.MPNetTokenizer
    vocab = ["<s>", "<pad>", "</s>", "[UNK]", "<mask>", *dict.fromkeys(WORDS)]
    try:  # transformers 5: a vocab mapping; 4.x: a vocab file
        tok = tok_cls(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True)
    except TypeError:
        (tmp / "mpnet_vocab.txt").write_text("\n".join(vocab) + "\n")
        tok = tok_cls(vocab_file=str(tmp / "mpnet_vocab.txt"), do_lower_case=True)
    cfg = MPNetConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        vocab_size=len(tok),
        max_position_embeddings=130,
    )
    model = MPNetModel(cfg)
    with torch.no_grad():
        model.encoder.relative_attention_bias.weight.normal_(0.0, 3.0)
    out = tmp / "mpnet"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_audio_classifier(tmp: Path, id2label: dict[int, str], sample_rate: int = 16000) -> Path:
    """A random Wav2Vec2ForSequenceClassification + feature extractor saved in ``tmp``."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_feat_extract_layers=2,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        num_labels=len(id2label),
        classifier_proj_size=8,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    Wav2Vec2ForSequenceClassification(cfg).save_pretrained(tmp)
    Wav2Vec2FeatureExtractor(sampling_rate=sample_rate).save_pretrained(tmp)
    return tmp
