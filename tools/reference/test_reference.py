"""Tests of the PyTorch reference itself: safetensors I/O, parameter names, float64 gradchecks of the
differentiable parts, VQ/EMA rules, and the MVQ gradient rules of docs/model.md.

Run: /usr/bin/python3 -m unittest discover -s tools/reference -p 'test_*.py' -v
"""
import copy
import json
import os
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import safetensors_io  # noqa: E402
from config import ModelConfig  # noqa: E402
from model import (Autoencoder, HypothesisBatchNorm, Mix, ResBlock, VectorQuantizer, make_decoder,  # noqa: E402
                   make_encoder, make_head, make_out, mask_bits, nearest_code, to_tokens, from_tokens, EMA_EPS)
import mvq_reference  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "tests", "data", "reference")


def tiny(kind="mvq", head="global", mode="ema", l1=2, l2=1, j=8, chunk=3):
    d = {"kind": kind, "image": {"channels": 1, "height": 8, "width": 8},
         "encoder": {"channels": [4, 8], "res_blocks": 1, "res_hidden": 4}, "activation": 0.2, "head": head,
         "code_dim": 4, "codes": 8, "quantizer": {"mode": mode, "beta": 0.25, "decay": 0.99}}
    if head == "global":
        d["tokens"] = l1
    if kind == "mvq":
        d["secondary"] = {"tokens": l2, "code_dim": 4, "codes": 8}
        d["mvq"] = {"hypotheses": j, "drop_rate": 0.5, "f_hidden": 8, "chunk": chunk}
    return ModelConfig.from_dict(d)


def random_masks(b, j, d2, seed=3):
    g = torch.Generator().manual_seed(seed)
    return mvq_reference.random_masks(g, 1, b, j, d2, 0.5)[0]


class SafetensorsTests(unittest.TestCase):
    def test_roundtrip_and_layout(self):
        t = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([-1, 7], dtype=np.int32),
             "c": np.array([2 ** 40], dtype=np.int64), "s": np.array(3.5, dtype=np.float32),
             "e": np.zeros((0, 4), dtype=np.float32)}
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "x.safetensors")
            safetensors_io.save(p, t, {"k": "v"})
            with open(p, "rb") as f:
                raw = f.read()
            (n,) = struct.unpack("<Q", raw[:8])
            self.assertEqual((8 + n) % 8, 0)
            header = json.loads(raw[8:8 + n])
            self.assertEqual(header["__metadata__"], {"k": "v"})
            self.assertEqual(header["a"], {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]})
            got, meta = safetensors_io.load(p)
        self.assertEqual(meta, {"k": "v"})
        self.assertEqual(list(got), list(t))
        for k in t:
            self.assertEqual(got[k].dtype, t[k].dtype)
            np.testing.assert_array_equal(got[k], t[k])

    def test_rejects_unsupported_dtype(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(TypeError):
                safetensors_io.save(os.path.join(d, "x"), {"a": np.zeros(2, dtype=np.float16)})


class NameTests(unittest.TestCase):
    def names(self, cfg):
        return list(Autoencoder(cfg).state_dict())

    def test_vq_grid_names(self):
        n = self.names(tiny("vq", "grid", "gradient"))
        self.assertEqual(n, ["encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias",
                             "encoder.4.weight", "encoder.4.bias", "encoder.5.inner.1.weight",
                             "encoder.5.inner.1.bias", "encoder.5.inner.3.weight", "encoder.5.inner.3.bias",
                             "bottleneck.head.weight", "bottleneck.head.bias", "bottleneck.vq.codebook",
                             "bottleneck.out.weight", "bottleneck.out.bias",
                             "decoder.0.weight", "decoder.0.bias", "decoder.1.inner.1.weight",
                             "decoder.1.inner.1.bias", "decoder.1.inner.3.weight", "decoder.1.inner.3.bias",
                             "decoder.4.weight", "decoder.4.bias", "decoder.7.weight", "decoder.7.bias"])

    def test_mvq_names_and_shapes(self):
        sd = Autoencoder(tiny()).state_dict()
        expect = {"bottleneck.vq.cluster_size": (8,), "bottleneck.vq.embed_sum": (8, 4),
                  "bottleneck.head.weight": (8, 32), "bottleneck.head2.weight": (4, 32),
                  "bottleneck.vq2.codebook": (8, 4), "bottleneck.gn.weight": (4,), "bottleneck.gn.bias": (4,),
                  "bottleneck.f.0.weight": (8, 4), "bottleneck.f.1.weight": (8,),
                  "bottleneck.f.1.running_mean": (8,), "bottleneck.f.1.running_var": (8,),
                  "bottleneck.f.3.weight": (4, 8), "bottleneck.mix.weight": (2, 1), "bottleneck.mix.bias": (2, 4),
                  "bottleneck.out.weight": (32, 8)}
        for k, s in expect.items():
            self.assertEqual(tuple(sd[k].shape), s, k)

    def test_grid_mvq_has_identity_mix(self):
        sd = Autoencoder(tiny(head="grid")).state_dict()
        self.assertFalse(any(k.startswith("bottleneck.mix") for k in sd))

    def test_two_res_blocks_shift_decoder_indices(self):
        d = tiny("vq", "grid", "gradient").raw
        d["encoder"]["res_blocks"] = 2
        n = self.names(ModelConfig.from_dict(d))
        for k in ("encoder.6.inner.3.bias", "decoder.2.inner.1.weight", "decoder.5.weight", "decoder.8.bias"):
            self.assertIn(k, n)


class GradcheckTests(unittest.TestCase):
    """torch.autograd.gradcheck in float64 on the differentiable pieces (argmin and stop-gradients excluded)."""

    def setUp(self):
        torch.manual_seed(0)

    def check(self, fn, *inputs):
        inputs = tuple(i.double().requires_grad_(True) for i in inputs)
        self.assertTrue(torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5))

    def test_resblock(self):
        m = ResBlock(3, 2, 0.2).double()
        self.check(m, torch.randn(2, 3, 3, 3))

    def test_encoder_decoder(self):
        cfg = tiny("vq", "grid", "gradient")
        enc, dec = make_encoder(cfg).double(), make_decoder(cfg).double()
        self.check(enc, torch.rand(2, 1, 8, 8))
        self.check(dec, torch.randn(2, 8, 2, 2))

    def test_heads(self):
        for head in ("grid", "global"):
            cfg = tiny("vq", head, "gradient")
            h, o = make_head(cfg, cfg.tokens, 4).double(), make_out(cfg, cfg.tokens, 4).double()
            self.check(lambda x: to_tokens(cfg, h, x, cfg.tokens, 4), torch.randn(2, 8, 2, 2))
            self.check(lambda y: from_tokens(cfg, o, y, 2, cfg.tokens, 4), torch.randn(2 * cfg.tokens, 4))

    def test_groupnorm_f_mix(self):
        m = Autoencoder(tiny()).double().bottleneck
        bits = mask_bits(random_masks(2, 3, 4), 4).double()
        mean, var = torch.rand(8).double(), torch.rand(8).double() + 0.5

        def fn(c_sec, w0, bnw, w3, mixw, mixb):
            g = m.gn(c_sec.permute(0, 2, 1)).permute(0, 2, 1)
            a = F.linear(bits[:, :, None, :] * g[:, None], w0, m.f[0].bias)
            u = F.leaky_relu((a - mean) / torch.sqrt(var + 1e-5) * bnw + m.f[1].bias, 0.2)
            return torch.matmul(mixw, F.linear(u, w3, m.f[3].bias)) + mixb

        self.check(fn, torch.randn(2, 1, 4), torch.randn(8, 4), torch.rand(8), torch.randn(4, 8),
                   torch.randn(2, 1), torch.randn(2, 4))
        # and the modules themselves give the same numbers as the hand-written composition
        c = torch.randn(2, 1, 4).double()
        g = m.gn(c.permute(0, 2, 1)).permute(0, 2, 1)
        self.assertTrue(torch.allclose(m.f_apply(bits, g, mean, var),
                                       fn(c, m.f[0].weight, m.f[1].weight, m.f[3].weight, m.mix.weight, m.mix.bias)))

    def test_batchnorm_with_given_stats(self):
        bn = HypothesisBatchNorm(3).double()
        mean, var = torch.randn(3).double(), torch.rand(3).double() + 0.1
        self.check(lambda a: bn(a, mean, var), torch.randn(5, 3))

    def test_mix(self):
        mix = Mix(3, 2, 4).double()
        self.check(mix, torch.randn(2, 2, 4))


class VqTests(unittest.TestCase):
    def test_nearest_code_and_ties(self):
        torch.manual_seed(1)
        z, e = torch.randn(50, 4), torch.randn(7, 4)
        k = nearest_code(z, e)
        brute = [min(range(7), key=lambda i: (float(((z[n] - e[i]) ** 2).sum()), i)) for n in range(50)]
        self.assertEqual(k.tolist(), brute)
        e2 = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
        self.assertEqual(nearest_code(torch.zeros(1, 2), e2).tolist(), [0])
        self.assertEqual(nearest_code(torch.tensor([[1.0, 0.0]]), e2).tolist(), [0])

    def test_gradient_mode_loss_and_grads(self):
        torch.manual_seed(2)
        vq = VectorQuantizer(5, 3, "gradient", 0.25, 0.99).train()
        vq.codebook.data = torch.randn(5, 3)
        z = torch.randn(11, 3, requires_grad=True)
        k, q, term, parts = vq(z)
        term.backward()
        n = z.numel()
        self.assertAlmostEqual(float(term), 1.25 * float(((z - q) ** 2).mean()), places=6)
        torch.testing.assert_close(z.grad, 0.25 * 2 * (z - q).detach() / n)
        expect = torch.zeros(5, 3).index_add_(0, k, 2 * (q - z).detach() / n)
        torch.testing.assert_close(vq.codebook.grad, expect)

    def test_ema_mode_update(self):
        torch.manual_seed(3)
        vq = VectorQuantizer(4, 2, "ema", 0.25, 0.99).train()
        e0 = vq.codebook.clone()
        z = e0[torch.tensor([0, 0, 2])] + 0.01 * torch.randn(3, 2)
        k, q, term, parts = vq(z)
        self.assertEqual(k.tolist(), [0, 0, 2])
        torch.testing.assert_close(q, e0[k])                # q from the codebook before the update
        cs = 0.99 * torch.ones(4) + 0.01 * torch.tensor([2.0, 0, 1, 0])
        es = 0.99 * e0 + 0.01 * torch.zeros(4, 2).index_add_(0, k, z)
        n = cs.sum()
        torch.testing.assert_close(vq.cluster_size, cs)
        torch.testing.assert_close(vq.embed_sum, es)
        torch.testing.assert_close(vq.codebook, es / ((cs + EMA_EPS) / (n + 4 * EMA_EPS) * n)[:, None])
        self.assertLess(float((vq.codebook[1] - e0[1]).abs().max()), 1e-3)   # unused entry stays (almost) put
        vq.eval()
        before = vq.codebook.clone()
        vq(z)
        torch.testing.assert_close(vq.codebook, before)

    def test_straight_through(self):
        torch.manual_seed(4)
        model = Autoencoder(tiny("vq", "global", "gradient")).train()
        x = torch.rand(3, 1, 8, 8)
        _, outs, losses = model(x)
        z1 = outs["z1"]
        gz = torch.autograd.grad(losses["rec"], z1, retain_graph=True)[0]
        self.assertGreater(float(gz.abs().sum()), 0)   # reconstruction gradient reaches z1 through q1


class MvqTests(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(5)
        self.cfg = tiny(j=8, chunk=3)
        self.model = Autoencoder(self.cfg).train()
        self.x = torch.rand(4, 1, 8, 8)
        self.masks = random_masks(4, 8, 4)

    def test_mask_bits(self):
        b = mask_bits(torch.tensor([0b1010, -2 ** 31], dtype=torch.int32), 32)
        self.assertEqual(b[0, :4].tolist(), [0.0, 1.0, 0.0, 1.0])
        self.assertEqual(b[1, 31].item(), 1.0)
        self.assertEqual(b[1, :31].sum().item(), 0.0)

    def test_wta_gradient_skips_z1(self):
        _, outs, losses = self.model(self.x, self.masks)
        z1, diff = outs["z1"], outs["diff_w"]
        gz = torch.autograd.grad(losses["wta"], z1, retain_graph=True, allow_unused=True)[0]
        self.assertTrue(gz is None or bool((gz == 0).all()))
        gd = torch.autograd.grad(losses["wta"], diff, retain_graph=True)[0]
        b, l1, d1 = 4, self.cfg.tokens, self.cfg.code_dim
        torch.testing.assert_close(gd, 2 * (outs["y_w"] - z1).detach() / (b * l1 * d1))
        # and the head receives nothing from d_w
        gh = torch.autograd.grad(losses["wta"], self.model.bottleneck.head.weight, allow_unused=True)[0]
        self.assertTrue(gh is None or bool((gh == 0).all()))

    def test_winner_distance(self):
        _, outs, losses = self.model(self.x, self.masks)
        d, w = outs["d"], outs["w"]
        self.assertEqual(w.tolist(), torch.argmin(d, dim=1).tolist())
        torch.testing.assert_close(losses["wta"], d[torch.arange(4), w].mean(), rtol=1e-5, atol=1e-7)

    def test_chunk_invariance(self):
        results = []
        for chunk in (1, 3, 8, 256):
            m = copy.deepcopy(self.model)
            m.cfg.chunk = chunk
            m.bottleneck.cfg = m.cfg
            _, outs, _ = m(self.x, self.masks)
            results.append((outs["w"], outs["d"]))
        for w, d in results[1:]:
            self.assertTrue(torch.equal(w, results[0][0]))
            torch.testing.assert_close(d, results[0][1])

    def test_losing_hypotheses_get_no_gradient(self):
        full = copy.deepcopy(self.model)
        _, outs, losses = full(self.x, self.masks)
        losses["total"].backward()
        only = copy.deepcopy(self.model)
        only.bottleneck.stats_override = (outs["bn_mean"], outs["bn_var"])
        winners = self.masks[torch.arange(4), outs["w"]][:, None]
        _, outs2, losses2 = only(self.x, winners)
        losses2["total"].backward()
        torch.testing.assert_close(losses2["total"], losses["total"])
        for (n, p), (_, p2) in zip(full.named_parameters(), only.named_parameters()):
            if p.grad is not None:
                torch.testing.assert_close(p2.grad, p.grad, msg=n)

    def test_batchnorm_running_update_and_eval(self):
        bn = self.model.bottleneck.f[1]
        _, outs, _ = self.model(self.x, self.masks)
        n = 4 * 8 * self.cfg.tokens2
        torch.testing.assert_close(bn.running_mean, 0.1 * outs["bn_mean"])
        torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * outs["bn_var"] * n / (n - 1))
        self.model.eval()
        bank = self.masks[0]
        _, a, _ = self.model(self.x, bank)
        _, b, _ = self.model(self.x[1:2], bank)     # evaluation: an instance's code does not depend on its batch
        torch.testing.assert_close(a["d"][1:2], b["d"])
        self.assertEqual(int(a["w"][1]), int(b["w"][0]))

    def test_masks_change_only_through_bits(self):
        full = self.masks.clone()
        full[:, 0] = 0xF                                   # all dims kept
        _, outs, _ = self.model.eval()(self.x, full)
        zero = self.masks.clone()
        zero[:, 0] = 0                                     # nothing kept: f sees zeros
        _, outs0, _ = self.model(self.x, zero)
        self.assertFalse(torch.allclose(outs["d"][:, 0], outs0["d"][:, 0]))
        torch.testing.assert_close(outs["d"][:, 1:], outs0["d"][:, 1:])


class StateFileTests(unittest.TestCase):
    def test_committed_state_files_reproduce(self):
        for name in ("vq_grid", "vq_global", "mvq_global"):
            path = os.path.join(DATA, f"{name}.safetensors")
            t, meta = safetensors_io.load(path)
            cfg = ModelConfig.from_dict(json.loads(meta["config"]))
            with open(os.path.join(DATA, f"{name}.json")) as f:
                self.assertEqual(json.loads(meta["config"]), json.load(f))
            self.assertTrue(np.all(np.isfinite(t["train/loss"])))
            self.assertLess(t["train/loss"][-1], t["train/loss"][0])
            with tempfile.TemporaryDirectory() as d:
                init = os.path.join(d, "init.safetensors")
                safetensors_io.save(init, {k: v for k, v in t.items() if k.startswith("param/")})
                got = mvq_reference.compute_state(cfg, int(meta["seed"]), init)
            self.assertEqual(sorted(got), sorted(t))
            for k, v in t.items():
                np.testing.assert_allclose(got[k].detach().numpy(), v, rtol=0, atol=1e-5, err_msg=k)


if __name__ == "__main__":
    unittest.main()
