"""Small seeded PyTorch models of the families data scientists bring beyond CNN
classifiers, exported to ONNX the way torch.onnx does for the real thing:

- bert:   a BERT-class encoder (token/position/type embeddings with int64 ids,
          attention mask -> additive bias, multi-head attention with MatMul between
          activations, LayerNorm, GELU via Erf, Tanh pooler), plus mean pooling as
          sentence-transformers does; opset 17 (LayerNormalization) or 14 (its
          ReduceMean/Pow/Sqrt decomposition);
- vit:    torchvision VisionTransformer (small config);
- yolo:   a YOLO-style detector (SiLU, Split/Concat C2f blocks, nearest Resize
          upsampling, box decoding with Pow/Exp and Sigmoid, ArgMax/ReduceMax
          over classes, TopK over anchors, GatherElements);
- unet:   a segmenter (ConvTranspose, bilinear Resize, skip Concat, Softmax over
          channels);
- lstm / gru / rnn: bidirectional, batch_first, 2 layers.

Each builder returns (torch module in eval mode, example inputs tuple, input names,
output names, dynamic axes). export() writes the ONNX file and returns PyTorch's
outputs on the example inputs. Nothing is downloaded."""
import numpy as np
import onnx
import torch
from torch import nn


def _seed(seed):
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed + 1)


# ---- BERT-class encoder -----------------------------------------------------------

class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, bias):
        b, s, d = x.shape
        split = lambda t: t.view(b, s, self.h, self.dk).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        att = torch.matmul(q, k.transpose(-1, -2)) / (self.dk ** 0.5) + bias
        ctx = torch.matmul(att.softmax(-1), v).transpose(1, 2).reshape(b, s, d)
        return self.o(ctx)


class Layer(nn.Module):
    def __init__(self, d, heads, ff):
        super().__init__()
        self.att, self.ln1 = Attention(d, heads), nn.LayerNorm(d, eps=1e-12)
        self.ff1, self.ff2, self.ln2 = nn.Linear(d, ff), nn.Linear(ff, d), nn.LayerNorm(d, eps=1e-12)

    def forward(self, x, bias):
        x = self.ln1(x + self.att(x, bias))
        return self.ln2(x + self.ff2(nn.functional.gelu(self.ff1(x))))


class Bert(nn.Module):
    def __init__(self, vocab=100, d=32, heads=4, ff=64, layers=2, maxlen=64):
        super().__init__()
        self.tok, self.pos, self.typ = nn.Embedding(vocab, d), nn.Embedding(maxlen, d), nn.Embedding(2, d)
        self.ln = nn.LayerNorm(d, eps=1e-12)
        self.layers = nn.ModuleList(Layer(d, heads, ff) for _ in range(layers))
        self.pool = nn.Linear(d, d)

    def forward(self, ids, mask):
        s = ids.shape[1]
        pos = torch.arange(s, device=ids.device).unsqueeze(0).expand_as(ids)
        typ = torch.zeros_like(ids)
        x = self.ln(self.tok(ids) + self.pos(pos) + self.typ(typ))
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, bias)
        pooled = torch.tanh(self.pool(x[:, 0]))
        # sentence-transformers mean pooling over the unmasked tokens
        m = mask.unsqueeze(-1).to(x.dtype)
        sent = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return x, pooled, sent


def bert(seed=0, batch=2, seq=9, vocab=100, **size):
    g = _seed(seed)
    m = Bert(vocab=vocab, **size).eval()
    ids = torch.randint(0, vocab, (batch, seq), generator=g)
    mask = torch.ones(batch, seq, dtype=torch.int64)
    mask[batch - 1, seq - 3:] = 0  # padding in the last sentence
    dyn = {"input_ids": {0: "N", 1: "S"}, "attention_mask": {0: "N", 1: "S"},
           "last_hidden_state": {0: "N", 1: "S"}, "pooler_output": {0: "N"},
           "sentence_embedding": {0: "N"}}
    return (m, (ids, mask), ["input_ids", "attention_mask"],
            ["last_hidden_state", "pooler_output", "sentence_embedding"], dyn)


# ---- ViT ------------------------------------------------------------------------------

def vit(seed=0, batch=2):
    from torchvision.models import VisionTransformer
    g = _seed(seed)
    m = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32,
                          mlp_dim=64, num_classes=10).eval()
    nn.init.normal_(m.heads.head.weight, std=0.2)  # torchvision zero-initialises the head
    x = torch.randn(batch, 3, 32, 32, generator=g)
    return m, (x,), ["input"], ["logits"], {"input": {0: "N"}, "logits": {0: "N"}}


# ---- YOLO-style detector -------------------------------------------------------------

def conv(ci, co, k=3, s=1):
    return nn.Sequential(nn.Conv2d(ci, co, k, s, k // 2, bias=False), nn.BatchNorm2d(co), nn.SiLU())


class C2f(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.cv1, self.m, self.cv2 = conv(c, c, 1), conv(c // 2, c // 2), conv(c + c // 2, c, 1)

    def forward(self, x):
        a, b = self.cv1(x).split(x.shape[1] // 2, 1)
        return self.cv2(torch.cat([a, b, self.m(b)], 1))


class Yolo(nn.Module):
    def __init__(self, nc=3, na=2, w=1):
        super().__init__()
        self.nc, self.na = nc, na
        c1, c2, c3 = 16 * w, 32 * w, 32 * w * (2 if w > 1 else 1)
        self.stem, self.b1 = conv(3, c1, 3, 2), nn.Sequential(conv(c1, c2, 3, 2), C2f(c2))
        self.b2 = nn.Sequential(conv(c2, c3, 3, 2), C2f(c3))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.neck = C2f(c2 + c3)
        self.head = nn.Conv2d(c2 + c3, na * (5 + nc), 1)
        anchors = [[10.0, 13.0], [16.0, 30.0], [33.0, 23.0]][:na]
        self.anchors = nn.Parameter(torch.tensor(anchors), requires_grad=False)

    def forward(self, x):
        p1 = self.b1(self.stem(x))
        p2 = self.b2(p1)
        y = self.head(self.neck(torch.cat([self.up(p2), p1], 1)))
        b, _, h, w = y.shape
        y = y.reshape(b, self.na, 5 + self.nc, h, w).permute(0, 1, 3, 4, 2).sigmoid()
        gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        grid = torch.stack((gx, gy), -1).reshape(1, 1, h, w, 2).float()
        stride = x.shape[2] / h
        xy = (y[..., 0:2] * 2 - 0.5 + grid) * stride
        wh = (y[..., 2:4] * 2).pow(2) * self.anchors.reshape(1, self.na, 1, 1, 2)
        boxes = torch.cat([xy, wh], -1).reshape(b, -1, 4)
        conf = (y[..., 4:5] * y[..., 5:]).reshape(b, -1, self.nc)
        score, cls = conf.max(-1)
        top, idx = score.topk(10, dim=1)
        picked = boxes.gather(1, idx.unsqueeze(-1).expand(-1, -1, 4))
        return picked, top, cls.gather(1, idx)


def yolo(seed=0, batch=1, size=64, **kw):
    from torch_export import seeded_bn
    g = _seed(seed)
    m = seeded_bn(Yolo(**kw), seed).eval()
    x = torch.rand(batch, 3, size, size, generator=g)
    return (m, (x,), ["images"], ["boxes", "scores", "classes"],
            {"images": {0: "N"}, "boxes": {0: "N"}, "scores": {0: "N"}, "classes": {0: "N"}})


# ---- segmentation --------------------------------------------------------------------

class UNet(nn.Module):
    def __init__(self, nc=4):
        super().__init__()
        self.e1, self.e2 = conv(3, 8), nn.Sequential(nn.MaxPool2d(2), conv(8, 16))
        self.e3 = nn.Sequential(nn.MaxPool2d(2), conv(16, 32))
        self.d3 = nn.ConvTranspose2d(32, 16, 2, 2)
        self.c2 = conv(32, 16)
        self.c1 = conv(24, 8)
        self.out = nn.Conv2d(8, nc, 1)

    def forward(self, x):
        a = self.e1(x)
        b = self.e2(a)
        c = self.e3(b)
        y = self.c2(torch.cat([self.d3(c), b], 1))
        y = nn.functional.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        y = self.c1(torch.cat([y, a], 1))
        return self.out(y).softmax(1)


def unet(seed=0, batch=2):
    from torch_export import seeded_bn
    g = _seed(seed)
    m = seeded_bn(UNet(), seed).eval()
    x = torch.randn(batch, 3, 32, 32, generator=g)
    return m, (x,), ["input"], ["probs"], {"input": {0: "N"}, "probs": {0: "N"}}


# ---- recurrent -------------------------------------------------------------------------

class Recurrent(nn.Module):
    def __init__(self, kind):
        super().__init__()
        cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
        self.rnn = cls(8, 12, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(24, 5)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y)


def recurrent(kind, seed=0, batch=3, seq=7):
    g = _seed(seed)
    m = Recurrent(kind).eval()
    x = torch.randn(batch, seq, 8, generator=g)
    return (m, (x,), ["x"], ["y"], {"x": {0: "N", 1: "T"}, "y": {0: "N", 1: "T"}})


# ---- benchmark sizes (bench/engine/families.py) ---------------------------------------

def minilm(seed=0, batch=1, seq=128):
    """all-MiniLM-L6-v2's shape: 384 wide, 6 layers, 12 heads, 1536 FFN, BERT's vocab."""
    return bert(seed, batch, seq, vocab=30522, d=384, heads=12, ff=1536, layers=6, maxlen=512)


def yolo320(seed=0, batch=1):
    """The YOLO-style detector at a deployable size: 320x320 input, 2x the channels
    (32/64/128, about 1.9 GMAC, YOLOv8n-s scale), 80 classes, 3 anchors."""
    return yolo(seed, batch, size=320, w=2, nc=80, na=3)


BUILDERS = {
    "bert": bert,
    "minilm": minilm,
    "yolo320": yolo320,
    "vit": vit,
    "yolo": yolo,
    "unet": unet,
    "lstm": lambda: recurrent("lstm"),
    "gru": lambda: recurrent("gru"),
    "rnn": lambda: recurrent("rnn"),
}


def export(name, path, opset=17, dynamic="batch"):
    """Exports family `name` with dynamic axes "all" (batch and sequence), "batch"
    (dim 0 only) or "none"; returns (example inputs as numpy, PyTorch outputs)."""
    m, args, ins, outs, dyn = BUILDERS[name]()
    if dynamic == "batch":
        dyn = {k: {0: v[0]} for k, v in dyn.items() if 0 in v}
    # not under no_grad: nn.MultiheadAttention's inference fast path has no ONNX export
    torch.onnx.export(m, args, path, opset_version=opset, do_constant_folding=True,
                      input_names=ins, output_names=outs,
                      dynamic_axes=dyn if dynamic != "none" else None)
    with torch.no_grad():
        want = m(*args)
    want = want if isinstance(want, tuple) else (want,)
    onnx.checker.check_model(onnx.load(path))
    return [a.numpy() for a in args], [w.numpy() for w in want]


def run_torch(name, inputs):
    """PyTorch's outputs of family `name` on other inputs (same seeded weights)."""
    m = BUILDERS[name]()[0]
    with torch.no_grad():
        out = m(*[torch.from_numpy(np.asarray(i)) for i in inputs])
    out = out if isinstance(out, tuple) else (out,)
    return [o.numpy() for o in out]
