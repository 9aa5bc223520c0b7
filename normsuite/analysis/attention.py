"""Which module classes are attention blocks: by layer type or by what ``forward`` computes
(``scaled_dot_product_attention``, a ``@`` / ``matmul`` product followed by a softmax, as in
hand-written heads such as Karpathy's nanoGPT ``Head``, or a softmax whose weights then
multiply the values, as in additive (Bahdanau) attention). Never by the class name alone:
ResNeSt's ``SplitAttentionConv2d`` is a conv block, CBAM's ``ChannelAttention`` an SE gate.

>>> import ast
>>> from normsuite.analysis.extract import ModuleIndex
>>> src = '''
... import torch.nn as nn
... import torch.nn.functional as F
... class Head(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.q = nn.Linear(8, 8)
...     def forward(self, x):
...         q = self.q(x)
...         return F.softmax(q @ q.transpose(-2, -1), dim=-1) @ q
... '''
>>> index = ModuleIndex(ast.parse(src), src)
>>> forward_attends(index.classes["Head"], index)
True
"""

from __future__ import annotations

import ast
import re

from .extract import ModuleIndex
from .ir import ATTENTION_TYPES, CONV_DIMS, ClassInfo, Layer, ModuleInstance
from .symbols import ExternalFunction
from .tree_facts import called_name, self_attribute, tree_facts

# Class names that say "attention block". Plain "Attention" also names CNN blocks (CBAM's
# ChannelAttention, SE): those count only when they hold no convolution.
_STRONG_NAMES = ("selfattention", "selfattn", "multihead", "mhsa", "transformer", "vit")
_WEAK_NAMES = ("attention", "attn")
_ATTENTION_CALLS = ("scaled_dot_product_attention", "multi_head_attention_forward")
_PRODUCTS = ("matmul", "bmm", "einsum", "baddbmm")


def attention_name(name: str, has_conv: bool) -> bool:
    """Whether a class name says attention (weak names only for conv-free classes)."""
    name = name.lower().replace("_", "")
    if any(n in name for n in _STRONG_NAMES):
        return True
    return not has_conv and any(n in name for n in _WEAK_NAMES)


def forward_attends(cls: ClassInfo, index: ModuleIndex) -> bool:
    """``forward`` calls an attention kernel, or multiplies tensors (``@``, matmul, bmm,
    einsum) and applies a softmax after that: the attention pattern. Memoized per class."""
    # Kept in the file that defines the forward (a block of another file is asked about by
    # every file that uses it); the text filter reads that file.
    owner: ClassInfo | None = cls
    for _ in range(32):  # as ClassInfo.method: a bounded walk up the bases
        if owner is None or "forward" in owner.methods:
            break
        owner = owner.parent
    if owner is None or "forward" not in owner.methods:
        return False
    home = owner.home if owner.home is not None else index
    key = ("forward-attends", id(owner))
    if key not in home.memo:
        # Most files have no softmax or attention call at all: no tree walk for them.
        fn = owner.methods["forward"]
        softmaxes = _softmax_attributes(home.source)
        home.memo[key] = (
            _mentions_attention(home.source)
            and any(_attends(f, softmaxes) for f in (fn, *_own_helpers(fn, owner)))
        ) or _calls_attending(fn, home)
    return home.memo[key]


def _own_helpers(fn: ast.FunctionDef, owner: ClassInfo) -> list[ast.FunctionDef]:
    """Methods of the class that ``forward`` calls as ``self.name(...)``: whisper's
    ``MultiHeadAttention.forward`` hands q, k, v to ``self.qkv_attention``, where the
    softmax is."""
    out = []
    for call in ast.walk(fn):
        if isinstance(call, ast.Call):
            name = self_attribute(call.func)
            method = owner.method(name) if name and name != "forward" else None
            if method is not None and method not in out:
                out.append(method)
    return out


def _mentions_attention(source: str) -> bool:
    return any(w in source for w in ("softmax", "Softmax", *_ATTENTION_CALLS))


_SOFTMAX_ATTRIBUTE = re.compile(r"self\.(\w+)\s*=\s*(?:\w+\.)*Softmax\(")


def _softmax_attributes(source: str) -> frozenset[str]:
    """``self.attend = nn.Softmax(dim=-1)`` (lucidrains' ViT, CoAtNet): ``self.attend(...)``
    is a softmax. Read from the file's text (a module attribute holds no other meaning)."""
    return frozenset(_SOFTMAX_ATTRIBUTE.findall(source)) if "Softmax" in source else frozenset()


def _calls_attending(fn: ast.FunctionDef, home: ModuleIndex) -> bool:
    """``forward`` hands its projections to a module-level function that attends, called by
    name or through a variable (transformers: ``attention_interface =
    ALL_ATTENTION_FUNCTIONS.get_interface(impl, eager_attention_forward)``, then
    ``attention_interface(self, q, k, v, ...)``). The function is judged by its body, in
    this file or another file of the project; never by its name."""
    for name in tree_facts(home).loads_in(fn):  # the file's one walk, not another
        found = _function_of(name, home)
        if found is not None and _function_attends(*found):
            return True
    return False


def _function_of(name: str, home: ModuleIndex) -> tuple[ast.FunctionDef, ModuleIndex] | None:
    if name in home.functions:
        return home.functions[name], home
    if name in home.imports and home.project is not None:
        found = home.project.lookup(home.imports[name])
        if isinstance(found, ExternalFunction):
            return found.node, found.home
    return None


def _function_attends(node: ast.FunctionDef, home: ModuleIndex) -> bool:
    key = ("function-attends", id(node))
    if key not in home.memo:
        home.memo[key] = _mentions_attention(home.source) and _attends(node)
    return home.memo[key]


def _attends(fn: ast.FunctionDef | None, softmaxes: frozenset[str] = frozenset()) -> bool:
    """Products then a softmax (or softmax weights multiplying values) in ``fn``;
    ``softmaxes`` are ``self`` attributes that hold an ``nn.Softmax``."""
    if fn is None:
        return False
    product_line: int | None = None
    softmax_lines: list[int] = []
    products: list[ast.AST] = []
    weights: set[str] = set()  # names assigned from an expression with a softmax
    for node in ast.walk(fn):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            product_line = min(product_line or node.lineno, node.lineno)
            products.append(node)
        elif isinstance(node, ast.Call):
            name = called_name(node.func)
            if name in _ATTENTION_CALLS:
                return True
            if name in _PRODUCTS:
                product_line = min(product_line or node.lineno, node.lineno)
                products.append(node)
            elif name == "softmax" or self_attribute(node.func) in softmaxes:
                softmax_lines.append(node.lineno)
            elif isinstance(node.func, ast.Call) and called_name(node.func.func) == "Softmax":
                softmax_lines.append(node.lineno)  # nn.Softmax(dim=-1)(scores): BERT's
        elif isinstance(node, ast.Assign) and _has_softmax(node.value, softmaxes):
            weights.update(t.id for t in node.targets if isinstance(t, ast.Name))
    # The softmax of the scores comes on or after the line of the first product ...
    if product_line is not None and any(line >= product_line for line in softmax_lines):
        return True
    if _mixes_experts(fn):
        return False  # softmax gates weighting a stack of expert outputs: a mixture (RMoK)
    # ... or softmax weights multiply the values afterwards (additive attention).
    return any(
        isinstance(sub, ast.Name) and sub.id in weights
        for product in products
        for sub in ast.walk(product)
    )


def _mixes_experts(fn: ast.FunctionDef) -> bool:
    """``torch.stack([e(x) for e in self.experts], -1)``: the outputs of each module of a
    ModuleList, stacked (or summed) for a gate to weight: experts, not positions."""
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Call) and called_name(node.func) in ("stack", "cat")):
            continue
        comp = node.args[0] if node.args else None
        if not isinstance(comp, (ast.ListComp, ast.GeneratorExp)) or len(comp.generators) != 1:
            continue
        loop = comp.generators[0]
        call = comp.elt
        if not isinstance(loop.target, ast.Name) or not isinstance(call, ast.Call):
            continue
        func = call.func
        each = (  # [e(x) for e in self.experts]
            isinstance(func, ast.Name)
            and func.id == loop.target.id
            and self_attribute(loop.iter) is not None
        )
        indexed = (  # [self.experts[i](x) for i in range(self.num_experts)] (RMoK)
            isinstance(func, ast.Subscript)
            and self_attribute(func.value) is not None
            and isinstance(func.slice, ast.Name)
            and func.slice.id == loop.target.id
        )
        if each or indexed:
            return True
    return False


def _has_softmax(node: ast.AST, softmaxes: frozenset[str] = frozenset()) -> bool:
    return any(
        isinstance(n, ast.Call)
        and (
            called_name(n.func) == "softmax"
            or self_attribute(n.func) in softmaxes
            or (isinstance(n.func, ast.Call) and called_name(n.func.func) == "Softmax")
        )
        for n in ast.walk(node)
    )


def _has_conv(inst: ModuleInstance, index: ModuleIndex) -> bool:
    key = ("has-conv", id(inst))
    if key not in index.memo:
        index.memo[key] = any(sub.type in CONV_DIMS for _, sub in inst.walk())
    return index.memo[key]


def is_attention_instance(inst: ModuleInstance, index: ModuleIndex) -> bool:
    """A file class instance that is an attention block by structure: its ``forward`` attends
    and it projects tokens with Linear layers or has no conv (a non-local block's matmul +
    softmax over 1x1-conv projections of conv maps is still a CNN; MViT's pooled attention,
    Linear q/k/v with a strided conv pooling K and V, is a Transformer's)."""
    key = ("attention-instance", id(inst))
    if key not in index.memo:
        index.memo[key] = False  # recursion guard
        linear = any(sub.type in ("Linear", "LazyLinear") for _, sub in inst.layers())
        index.memo[key] = (linear or not _has_conv(inst, index)) and forward_attends(
            inst.cls, index
        )
    return index.memo[key]


def holds_attention(inst: ModuleInstance, index: ModuleIndex) -> bool:
    """The instance is itself an attention block's body: it owns an attention layer, computes
    attention in its own conv-free ``forward``, or directly owns attention heads (in an
    attribute, a ModuleList or a Sequential). A model that merely holds Transformer *blocks*
    does not count, so the BatchNorm of a hybrid model's conv stem is not "inside a
    Transformer block"."""
    key = ("holds-attention", id(inst))
    if key not in index.memo:
        index.memo[key] = False  # recursion guard
        own = not _has_conv(inst, index) and forward_attends(inst.cls, index)
        index.memo[key] = own or any(_is_head(layer, index) for _, layer in inst.layers())
    return index.memo[key]


def _is_head(layer: Layer, index: ModuleIndex) -> bool:
    """An attention layer, or a conv-free file class that attends in ``forward`` or wraps an
    attention layer. Names alone do not count here: CBAM/SE "ChannelAttention" blocks built
    from Linear layers sit inside CNN blocks, whose BatchNorm is not in a Transformer."""
    if layer.type in ATTENTION_TYPES:
        return True
    if layer.type in ("ModuleList", "Sequential", "ModuleDict"):
        return any(_is_head(child, index) for child in layer.children)
    inst = layer.instance if layer.type == "Custom" else None
    if inst is None or _has_conv(inst, index):
        return False
    wraps = any(sub.type in ATTENTION_TYPES for _, sub in inst.layers())
    return wraps or forward_attends(inst.cls, index)


__all__ = ["attention_name", "forward_attends", "holds_attention", "is_attention_instance"]
