"""ModelConfig: the JSON model configuration shared with the C# library (see README.md)."""
import json
from dataclasses import dataclass, asdict
from typing import List, Optional


@dataclass
class ModelConfig:
    kind: str                     # "vq" | "mvq"
    channels: int                 # image C
    height: int                   # image H (multiple of 4)
    width: int                    # image W (multiple of 4)
    enc_channels: List[int]       # [c0, c1]
    res_blocks: int
    res_hidden: int
    slope: float                  # LeakyReLU negative slope (config "activation")
    head: str                     # "grid" | "global"
    tokens: int                   # L1 (grid: H'W', derived)
    code_dim: int                 # D1
    codes: int                    # K1
    quant_mode: str               # "gradient" | "ema"
    beta: float
    decay: float
    # MVQ only
    tokens2: int = 0              # L2 (grid: H'W', derived)
    code_dim2: int = 0            # D2 (<= 32: masks are D2-bit words)
    codes2: int = 0               # K2
    hypotheses: int = 0           # J
    drop_rate: float = 0.5        # p
    f_hidden: int = 0             # F
    chunk: int = 256
    raw: Optional[dict] = None    # the JSON as read, written back verbatim into state files

    @property
    def c0(self):
        return self.enc_channels[0]

    @property
    def c1(self):
        return self.enc_channels[1]

    @property
    def hp(self):
        return self.height // 4

    @property
    def wp(self):
        return self.width // 4

    @staticmethod
    def from_dict(d):
        img, enc, q = d["image"], d["encoder"], d.get("quantizer", {})
        head = d.get("head", "grid")
        h, w = int(img["height"]), int(img["width"])
        if h % 4 or w % 4:
            raise ValueError("image height and width must be multiples of 4 (trunk downsamples by 4)")
        grid_tokens = (h // 4) * (w // 4)
        cfg = ModelConfig(
            kind=d["kind"], channels=int(img["channels"]), height=h, width=w,
            enc_channels=[int(c) for c in enc["channels"]], res_blocks=int(enc["res_blocks"]),
            res_hidden=int(enc["res_hidden"]), slope=float(d.get("activation", 0.2)), head=head,
            tokens=grid_tokens if head == "grid" else int(d["tokens"]),
            code_dim=int(d["code_dim"]), codes=int(d["codes"]),
            quant_mode=q.get("mode", "gradient"), beta=float(q.get("beta", 0.25)),
            decay=float(q.get("decay", 0.99)), raw=d)
        if cfg.kind not in ("vq", "mvq"):
            raise ValueError(f"kind must be vq or mvq, got {cfg.kind}")
        if cfg.head not in ("grid", "global"):
            raise ValueError(f"head must be grid or global, got {cfg.head}")
        if cfg.quant_mode not in ("gradient", "ema"):
            raise ValueError(f"quantizer.mode must be gradient or ema, got {cfg.quant_mode}")
        if head == "grid" and "tokens" in d and int(d["tokens"]) != grid_tokens:
            raise ValueError(f"grid head has H'W' = {grid_tokens} tokens, config says {d['tokens']}")
        if cfg.kind == "mvq":
            s, m = d["secondary"], d["mvq"]
            cfg.tokens2 = grid_tokens if head == "grid" else int(s["tokens"])
            cfg.code_dim2, cfg.codes2 = int(s["code_dim"]), int(s["codes"])
            cfg.hypotheses, cfg.drop_rate = int(m["hypotheses"]), float(m.get("drop_rate", 0.5))
            cfg.f_hidden, cfg.chunk = int(m["f_hidden"]), int(m.get("chunk", 256))
            if cfg.code_dim2 > 32:
                raise ValueError("secondary code_dim must be <= 32 (masks are 32-bit words)")
        return cfg

    @staticmethod
    def load(path):
        with open(path) as f:
            d = json.load(f)
        # A preset or `mvq train --config` file ({"model": {...camelCase...}, "train": ...}), or a plain
        # snake_case model config (the format of the reference state files).
        return ModelConfig.from_dict(from_ours(d["model"]) if "model" in d else d)

    def to_json(self):
        return json.dumps(self.raw, sort_keys=True) if self.raw is not None else json.dumps(asdict(self))


# Defaults of the C# ModelConfig that a preset file may leave out (MvqNative/Models/ModelConfig.cs).
_OURS_DEFAULTS = {"kind": "vq", "image": {"channels": 1, "height": 28, "width": 28},
                  "encoder": {"channels": [32, 64], "resBlocks": 2, "resHidden": 32, "slope": 0.2},
                  "head": "grid", "tokens": 5, "codeDim": 16, "codes": 128,
                  "quantizer": {"mode": "ema", "beta": 0.25, "decay": 0.99}}
_OURS_MVQ_DEFAULTS = {"secondary": {"tokens": 2, "codeDim": 16, "codes": 64},
                      "mvq": {"hypotheses": 256, "dropRate": 0.5, "fHidden": 64, "chunk": 256}}


def from_ours(m):
    """The C# model config (camelCase, defaults omitted) as the reference's snake_case dict."""
    def get(section, key):
        return m.get(section, {}).get(key, defaults[section][key])
    defaults = dict(_OURS_DEFAULTS, **(_OURS_MVQ_DEFAULTS if m.get("kind") == "mvq" else {}))
    d = {"kind": m.get("kind", "vq"),
         "image": {k: m.get("image", {}).get(k, v) for k, v in defaults["image"].items()},
         "encoder": {"channels": get("encoder", "channels"), "res_blocks": get("encoder", "resBlocks"),
                     "res_hidden": get("encoder", "resHidden")},
         "activation": get("encoder", "slope"), "head": m.get("head", "grid"),
         "code_dim": m.get("codeDim", 16), "codes": m.get("codes", 128),
         "quantizer": {"mode": get("quantizer", "mode"), "beta": get("quantizer", "beta"), "decay": get("quantizer", "decay")}}
    if d["head"] == "global":
        d["tokens"] = m.get("tokens", 5)
    if d["kind"] == "mvq":
        d["secondary"] = {"tokens": get("secondary", "tokens"), "code_dim": get("secondary", "codeDim"), "codes": get("secondary", "codes")}
        d["mvq"] = {"hypotheses": get("mvq", "hypotheses"), "drop_rate": get("mvq", "dropRate"),
                    "f_hidden": get("mvq", "fHidden"), "chunk": get("mvq", "chunk")}
    return d
