"""The VQ and MVQ autoencoders of docs/model.md in PyTorch: the reference for the C# library.

Module attribute names are chosen so that state_dict() keys equal the checkpoint names of
docs/model.md (table in README.md). Token tensors are [B*L, D] like the C# side.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from config import ModelConfig

EMA_EPS = 1e-5      # Laplace smoothing of EMA cluster sizes
NORM_EPS = 1e-5     # GroupNorm and BatchNorm epsilon
BN_MOMENTUM = 0.1


class ResBlock(nn.Module):
    """y = x + Conv1x1(hid->ch)(act(Conv3x3(ch->hid, pad 1)(act(x)))); params inner.1.*, inner.3.*."""

    def __init__(self, ch, hid, slope):
        super().__init__()
        self.inner = nn.Sequential(nn.LeakyReLU(slope), nn.Conv2d(ch, hid, 3, 1, 1),
                                   nn.LeakyReLU(slope), nn.Conv2d(hid, ch, 1))

    def forward(self, x):
        return x + self.inner(x)


def make_encoder(cfg: ModelConfig):
    """encoder.0 conv k4s2, 1 act, 2 conv k4s2, 3 act, 4 conv k3, 5.. ResBlocks, last act -> h [B, c1, H/4, W/4]."""
    s = cfg.slope
    layers = [nn.Conv2d(cfg.channels, cfg.c0, 4, 2, 1), nn.LeakyReLU(s),
              nn.Conv2d(cfg.c0, cfg.c1, 4, 2, 1), nn.LeakyReLU(s),
              nn.Conv2d(cfg.c1, cfg.c1, 3, 1, 1)]
    layers += [ResBlock(cfg.c1, cfg.res_hidden, s) for _ in range(cfg.res_blocks)]
    layers.append(nn.LeakyReLU(s))
    return nn.Sequential(*layers)


def make_decoder(cfg: ModelConfig):
    """decoder.0 conv k3, 1.. ResBlocks, act, up2, conv c1->c0, act, up2, conv c0->C -> x_hat [B, C, H, W]."""
    s = cfg.slope
    layers = [nn.Conv2d(cfg.c1, cfg.c1, 3, 1, 1)]
    layers += [ResBlock(cfg.c1, cfg.res_hidden, s) for _ in range(cfg.res_blocks)]
    layers += [nn.LeakyReLU(s), nn.Upsample(scale_factor=2, mode="nearest"),
               nn.Conv2d(cfg.c1, cfg.c0, 3, 1, 1), nn.LeakyReLU(s),
               nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cfg.c0, cfg.channels, 3, 1, 1)]
    return nn.Sequential(*layers)


def make_head(cfg: ModelConfig, tokens, dim):
    """grid: Conv1x1(c1 -> D); global: Linear(c1*H'*W' -> L*D)."""
    if cfg.head == "grid":
        return nn.Conv2d(cfg.c1, dim, 1)
    return nn.Linear(cfg.c1 * cfg.hp * cfg.wp, tokens * dim)


def make_out(cfg: ModelConfig, tokens, dim):
    """Decoder head: grid: Conv1x1(D -> c1); global: Linear(L*D -> c1*H'*W')."""
    if cfg.head == "grid":
        return nn.Conv2d(dim, cfg.c1, 1)
    return nn.Linear(tokens * dim, cfg.c1 * cfg.hp * cfg.wp)


def to_tokens(cfg, head, h, tokens, dim):
    """h [B, c1, H', W'] -> tokens [B*L, D] (grid: row-major over (h', w') in each image)."""
    b = h.shape[0]
    if cfg.head == "grid":
        return head(h).permute(0, 2, 3, 1).reshape(b * tokens, dim)
    return head(h.reshape(b, -1)).reshape(b * tokens, dim)


def from_tokens(cfg, out, y, batch, tokens, dim):
    """tokens [B*L, D] -> decoder input [B, c1, H', W']."""
    if cfg.head == "grid":
        return out(y.reshape(batch, cfg.hp, cfg.wp, dim).permute(0, 3, 1, 2))
    return out(y.reshape(batch, tokens * dim)).reshape(batch, cfg.c1, cfg.hp, cfg.wp)


def nearest_code(z, codebook):
    """k[n] = argmin_k sum_d (z[n,d] - e[k,d])^2, ties to the smallest k (torch.argmin keeps the first)."""
    diff = z.detach()[:, None, :] - codebook.detach()[None, :, :]
    return torch.argmin((diff * diff).sum(-1), dim=1)


class VectorQuantizer(nn.Module):
    """Codebook [K, D] (a Parameter in gradient mode; buffers codebook, cluster_size, embed_sum in EMA mode)."""

    def __init__(self, codes, dim, mode, beta, decay):
        super().__init__()
        self.codes, self.dim, self.mode, self.beta, self.decay = codes, dim, mode, beta, decay
        init = torch.empty(codes, dim).uniform_(-1.0 / codes, 1.0 / codes)
        if mode == "gradient":
            self.codebook = nn.Parameter(init)
        else:
            self.register_buffer("codebook", init)
            # cluster_size starts at 1 and embed_sum at the codebook, so an unused entry stays put.
            self.register_buffer("cluster_size", torch.ones(codes))
            self.register_buffer("embed_sum", init.clone())

    def forward(self, z):
        """z [N, D] -> (k [N] int64, q [N, D] = e_k (pre-update codebook), vq loss term, parts dict)."""
        k = nearest_code(z, self.codebook)
        q = self.codebook.index_select(0, k)
        commit = F.mse_loss(z, q.detach())
        if self.mode == "gradient":
            codebook_loss = F.mse_loss(q, z.detach())
            term = codebook_loss + self.beta * commit
            parts = {"codebook": codebook_loss, "commit": commit}
        else:
            term = self.beta * commit
            parts = {"commit": commit}
        if self.training and self.mode == "ema":
            self.ema_update(z.detach(), k)
        return k, q, term, parts

    @torch.no_grad()
    def ema_update(self, z, k):
        """cluster_size, embed_sum <- decay*old + (1-decay)*batch; codebook = embed_sum / Laplace-smoothed size."""
        counts = torch.bincount(k, minlength=self.codes).to(z.dtype)
        sums = torch.zeros(self.codes, self.dim, dtype=z.dtype).index_add_(0, k, z)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + EMA_EPS) / (n + self.codes * EMA_EPS) * n
        self.codebook.copy_(self.embed_sum / smoothed[:, None])


class HypothesisBatchNorm(nn.Module):
    """BatchNorm over F features whose statistics are passed in (computed under stop-gradient by the caller)."""

    def __init__(self, features):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(features))
        self.bias = nn.Parameter(torch.zeros(features))
        self.register_buffer("running_mean", torch.zeros(features))
        self.register_buffer("running_var", torch.ones(features))

    def forward(self, a, mean, var):
        return (a - mean) / torch.sqrt(var + NORM_EPS) * self.weight + self.bias


class Mix(nn.Module):
    """U: Y[l1] = sum_l2 weight[l1, l2] f[l2] + bias[l1, :]; weight [L1, L2], bias [L1, D1]."""

    def __init__(self, l1, l2, d1):
        super().__init__()
        bound = 1.0 / math.sqrt(l2)
        self.weight = nn.Parameter(torch.empty(l1, l2).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(l1, d1).uniform_(-bound, bound))

    def forward(self, f):
        """f [..., L2, D1] -> [..., L1, D1]."""
        return torch.matmul(self.weight, f) + self.bias


def mask_bits(masks, dim):
    """masks int [..] of D2-bit words -> float {0,1} [.., D2]; bit i (value 1 << i) keeps dimension i."""
    words = masks.to(torch.int64) & 0xFFFFFFFF      # int32 storage of bit 31 is negative
    shifts = torch.arange(dim, dtype=torch.int64)
    return ((words[..., None] >> shifts) & 1).to(torch.get_default_dtype())


class VqBottleneck(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.head = make_head(cfg, cfg.tokens, cfg.code_dim)
        self.vq = VectorQuantizer(cfg.codes, cfg.code_dim, cfg.quant_mode, cfg.beta, cfg.decay)
        self.out = make_out(cfg, cfg.tokens, cfg.code_dim)

    def forward(self, h, masks=None):
        cfg, b = self.cfg, h.shape[0]
        z1 = to_tokens(cfg, self.head, h, cfg.tokens, cfg.code_dim)
        k1, q1, term, parts = self.vq(z1)
        y = z1 + (q1 - z1).detach()
        dec_in = from_tokens(cfg, self.out, y, b, cfg.tokens, cfg.code_dim)
        outs = {"z1": z1, "k1": k1, "q1": q1}
        losses = {"vq1": term}
        losses.update({f"vq1_{k}": v for k, v in parts.items()})
        return dec_in, outs, losses


class MvqBottleneck(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.head = make_head(cfg, cfg.tokens, cfg.code_dim)
        self.vq = VectorQuantizer(cfg.codes, cfg.code_dim, cfg.quant_mode, cfg.beta, cfg.decay)
        self.head2 = make_head(cfg, cfg.tokens2, cfg.code_dim2)
        self.vq2 = VectorQuantizer(cfg.codes2, cfg.code_dim2, cfg.quant_mode, cfg.beta, cfg.decay)
        self.gn = nn.GroupNorm(1, cfg.code_dim2, eps=NORM_EPS)
        self.f = nn.Sequential(nn.Linear(cfg.code_dim2, cfg.f_hidden), HypothesisBatchNorm(cfg.f_hidden),
                               nn.LeakyReLU(cfg.slope), nn.Linear(cfg.f_hidden, cfg.code_dim))
        # U is the identity (no parameters) when both token grids coincide.
        self.mix = None if cfg.head == "grid" else Mix(cfg.tokens, cfg.tokens2, cfg.code_dim)
        self.out = make_out(cfg, cfg.tokens, cfg.code_dim)
        self.stats_override = None   # tests: (mean, var) to use instead of the batch statistics

    def f_apply(self, m, g, mean, var):
        """m [.., D2] mask bits, g [B, L2, D2] -> diff = U(f(m * g)); m [B, J, D2] -> [B, J, L1, D1]."""
        a = self.f[0](m[:, :, None, :] * g[:, None, :, :])
        u = self.f[3](self.f[2](self.f[1](a, mean, var)))
        return u if self.mix is None else self.mix(u)

    def forward(self, h, masks):
        """masks int [B, J] (training: per instance) or [J] (evaluation bank, shared by all instances)."""
        cfg, b = self.cfg, h.shape[0]
        l1, d1, l2, d2 = cfg.tokens, cfg.code_dim, cfg.tokens2, cfg.code_dim2
        z1 = to_tokens(cfg, self.head, h, l1, d1)
        k1, q1, term1, parts1 = self.vq(z1)
        z2 = to_tokens(cfg, self.head2, h, l2, d2)
        k2, q2, term2, parts2 = self.vq2(z2)
        c_sec = z2 + (q2 - z2).detach()
        g = self.gn(c_sec.reshape(b, l2, d2).permute(0, 2, 1)).permute(0, 2, 1)   # [B, L2, D2]
        if masks.dim() == 1:
            masks = masks[None, :].expand(b, -1)
        bits = mask_bits(masks, d2)                                                # [B, J, D2]
        j_count = bits.shape[1]
        z1v, q1v = z1.reshape(b, l1, d1), q1.reshape(b, l1, d1)
        bn = self.f[1]

        with torch.no_grad():
            # Pass 1: BatchNorm statistics over all B*J*L2 rows, constants for the backward pass.
            if self.stats_override is not None:
                mean, var = self.stats_override
            elif self.training:
                a_all = self.f[0](bits[:, :, None, :] * g.detach()[:, None, :, :]).reshape(-1, cfg.f_hidden)
                mean = a_all.mean(0)
                var = ((a_all - mean) ** 2).mean(0)
                n = a_all.shape[0]
                bn.running_mean.mul_(1 - BN_MOMENTUM).add_(mean, alpha=BN_MOMENTUM)
                bn.running_var.mul_(1 - BN_MOMENTUM).add_(var * (n / max(n - 1, 1)), alpha=BN_MOMENTUM)
            else:
                mean, var = bn.running_mean.clone(), bn.running_var.clone()
            # Pass 2: score hypotheses chunk by chunk with a running argmin (strict <: ties keep the smaller j).
            c_base = (z1v + (q1v - z1v)).detach()
            d_all = torch.empty(b, j_count)
            best_d = torch.full((b,), float("inf"))
            best_w = torch.zeros(b, dtype=torch.int64)
            for j0 in range(0, j_count, cfg.chunk):
                diff = self.f_apply(bits[:, j0:j0 + cfg.chunk], g.detach(), mean, var)
                y = c_base[:, None] + diff
                d = ((y - z1v.detach()[:, None]) ** 2).mean(dim=(2, 3))            # [B, chunk]
                d_all[:, j0:j0 + cfg.chunk] = d
                dmin, jmin = d.min(dim=1)  # min returns the first minimal index
                better = dmin < best_d
                best_d = torch.where(better, dmin, best_d)
                best_w = torch.where(better, jmin + j0, best_w)
            w = best_w

        # Winner only, with gradients: Y_w = z1 + sg(q1 - z1) + diff_w.
        bits_w = bits[torch.arange(b), w][:, None, :]                              # [B, 1, D2]
        diff_flat = self.f_apply(bits_w, g, mean, var)[:, 0].reshape(b * l1, d1)
        y_w = z1v + (q1v - z1v).detach() + diff_flat.reshape(b, l1, d1)
        d_w = ((y_w - z1v) ** 2).mean()
        dec_in = from_tokens(cfg, self.out, y_w.reshape(b * l1, d1), b, l1, d1)
        outs = {"z1": z1, "k1": k1, "q1": q1, "z2": z2, "k2": k2, "q2": q2, "g": g.reshape(b * l2, d2),
                "d": d_all, "w": w, "y_w": y_w.reshape(b * l1, d1), "diff_w": diff_flat,
                "bn_mean": mean, "bn_var": var}
        losses = {"vq1": term1, "vq2": term2, "wta": d_w}
        losses.update({f"vq1_{k}": v for k, v in parts1.items()})
        losses.update({f"vq2_{k}": v for k, v in parts2.items()})
        return dec_in, outs, losses


class Autoencoder(nn.Module):
    """encoder -> bottleneck (VQ or MVQ) -> decoder; forward returns (x_hat, outputs, losses incl. 'total')."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = make_encoder(cfg)
        self.bottleneck = MvqBottleneck(cfg) if cfg.kind == "mvq" else VqBottleneck(cfg)
        self.decoder = make_decoder(cfg)

    def forward(self, x, masks=None):
        if self.cfg.kind == "mvq" and masks is None:
            raise ValueError("MVQ forward needs masks [B, J] (or a bank [J])")
        h = self.encoder(x)
        dec_in, outs, losses = self.bottleneck(h, masks)
        x_hat = self.decoder(dec_in)
        losses["rec"] = F.mse_loss(x_hat, x)
        total = losses["rec"] + losses["vq1"]
        if self.cfg.kind == "mvq":
            total = total + losses["vq2"] + losses["wta"]
        losses["total"] = total
        outs["h"] = h
        outs["x_hat"] = x_hat
        return x_hat, outs, losses


def decays(name, tensor):
    """AdamW weight decay applies to conv/linear/mix weights (rank >= 2, named *.weight) only."""
    return name.endswith(".weight") and tensor.dim() >= 2


def make_optimizer(model, lr, weight_decay):
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if decays(n, p)], "weight_decay": weight_decay},
              {"params": [p for n, p in named if not decays(n, p)], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, foreach=False)


def clip_gradients(model, max_norm):
    """Global L2 norm over all gradients; scale by max_norm / (norm + 1e-6) when that is < 1. Returns the norm."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).float()
    coef = max_norm / (norm + 1e-6)
    if coef < 1:
        for g in grads:
            g.mul_(coef)
    return norm


def train_step(model, opt, x, masks, clip=1.0):
    """One training step: forward (EMA/BN running updates inside), backward, clip, AdamW. Returns (outs, losses, norm)."""
    opt.zero_grad(set_to_none=False)
    _, outs, losses = model(x, masks)
    losses["total"].backward()
    norm = clip_gradients(model, clip)
    opt.step()
    return outs, losses, norm
