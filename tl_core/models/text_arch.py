"""Text encoders cut between two layers, so a depth-k fine-tune runs the frozen bottom once and the top every step.

A Hugging Face encoder threads more than hidden states through its layers: an attention mask built for the
attention implementation in use (eager, SDPA, ...) and, in T5, a relative position bias that layer 0 computes and
passes up. A `TextCut` knows, per architecture, how the library's own encoder loop calls its layers, so the top of
the encoder can start from cached hidden states plus their 2-D attention mask and give exactly what the whole
encoder gives:

  bottom - the model's own forward, stopped where the first trainable layer would start (so embeddings, their
           dropout and the frozen layers run exactly as in the full model);
  top    - the remaining layer modules, called with the masks the model's own helpers build
           (transformers.masking_utils), then what follows the last layer (GPT-2's ln_f, T5's final norm and
           dropout). Dropout inside these layers applies in training mode, as in the full model.

XLNet has no cut: its two-stream attention takes relative encodings (with their own dropout) and masks built
inline in its forward, so it runs whole and caches only pooled features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tl_core.models import hf

#: config.model_type -> how its encoder calls its layers. Anything else runs whole.
SUPPORTED = ("bert", "roberta", "distilbert", "gpt2", "t5")


def supports(model_type: str) -> bool:
    return model_type in SUPPORTED


class _Stop(Exception):
    """Raised by the hook on the first trainable layer: the forward has produced everything below it."""

    def __init__(self, hidden: torch.Tensor):
        super().__init__("stopped at the freeze boundary")
        self.hidden = hidden


@dataclass(frozen=True)
class TextCut:
    """Holds names, not modules: a copied or moved model keeps working."""

    model_type: str
    layers_path: str  # the encoder's ModuleList (encoder.layer, transformer.layer, h, encoder.block)

    def bottom(self, net: nn.Module, x: dict, layer: int) -> torch.Tensor:
        """The hidden states entering `layer`, made by the model's own forward, which stops there."""
        def stop(module, args, kwargs):
            raise _Stop(args[0] if args else kwargs["hidden_states"])

        handle = net.get_submodule(self.layers_path)[layer].register_forward_pre_hook(stop, with_kwargs=True)
        try:
            net(input_ids=x["input_ids"], attention_mask=x["attention_mask"])
        except _Stop as reached:
            return reached.hidden
        finally:
            handle.remove()
        raise RuntimeError(f"{self.model_type}: the forward never reached layer {layer}")

    def top(self, net: nn.Module, hidden: torch.Tensor, mask: torch.Tensor, layer: int) -> torch.Tensor:
        """The encoder's last hidden state, from the hidden states entering `layer` and the 2-D attention mask."""
        layers = net.get_submodule(self.layers_path)[layer:]
        return _TOPS[self.model_type](net, layers, hidden, mask, layer)


def cut_for(net: nn.Module, layers_path: str) -> TextCut | None:
    model_type = net.config.model_type
    return TextCut(model_type, layers_path) if supports(model_type) else None


# ---- each architecture's loop over its layers, as its own forward runs it (transformers 5) ----------------
def _bert(net, layers, h, mask, layer):
    """BERT, MiniLM, RoBERTa (BertEncoder / RobertaEncoder) and DistilBERT (Transformer): layer(h, mask)."""
    create_bidirectional_mask = hf.masking_utils().create_bidirectional_mask

    extended = create_bidirectional_mask(config=net.config, inputs_embeds=h, attention_mask=mask)
    for module in layers:
        h = module(h, extended)
    return h


def _gpt2(net, layers, h, mask, layer):
    """GPT2Model: causal mask, block(h, past_key_values, mask, position_ids=...), then the final ln_f."""
    create_causal_mask = hf.masking_utils().create_causal_mask

    position_ids = torch.arange(h.shape[1], device=h.device).unsqueeze(0)
    causal = create_causal_mask(config=net.config, inputs_embeds=h, attention_mask=mask, past_key_values=None,
                                position_ids=position_ids)
    for module in layers:
        h = module(h, None, causal, position_ids=position_ids)
    return net.ln_f(h)


def _t5(net, layers, h, mask, layer):
    """T5Stack (encoder): layer 0 computes the relative position bias and every later layer reuses it; after the
    last layer, final_layer_norm and dropout. When layer 0 is frozen its bias is computed with its own module."""
    create_bidirectional_mask = hf.masking_utils().create_bidirectional_mask

    encoder = net.encoder
    extended = create_bidirectional_mask(config=encoder.config, inputs_embeds=h, attention_mask=mask)
    bias = None
    if layer == 0:  # the encoder's dropout on its input sits exactly at this cut
        h = encoder.dropout(h)
    else:
        length = h.shape[1]
        bias = encoder.block[0].layer[0].SelfAttention.compute_bias(length, length, device=h.device)
    for module in layers:
        h, bias, _ = module(h, extended, bias)
    return encoder.dropout(encoder.final_layer_norm(h))


_TOPS = {"bert": _bert, "roberta": _bert, "distilbert": _bert, "gpt2": _gpt2, "t5": _t5}
