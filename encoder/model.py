"""LLM2Vec-Gen: a frozen causal LM, K trainable special tokens and two chained linear projections.

Shapes (B batch, T text tokens, K special tokens, H LM hidden size, D teacher dim, R response tokens):

    input_ids (B, T) --embed--> (B, T, H) ++ special (K, H)  -> frozen LM, causal, final norm
    h = last hidden states at the K special positions           (B, K, H)
    p = recon(h)   soft prompts the frozen LM can decode          (B, K, H)
    e = align(p).mean(dim=1)   the embedding                      (B, D)

Training loss (see ``training/``): L_recon = CE of the frozen LM reading the response after
``p``; L_align = MSE(e, teacher(response)). Only ``special``, ``recon`` and ``align`` train.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache, PreTrainedModel

log = logging.getLogger(__name__)

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys and values (1, kv_heads, P, head_dim)
MAX_RECON_CONDITION = 1e6  # keep_embedding: fp32 rounding times this stays far below the embeddings' scale


class LLM2VecGen(nn.Module):
    def __init__(self, lm: PreTrainedModel, num_tokens: int = 10, teacher_dim: int = 768, seed: int = 0):
        super().__init__()
        self.lm = lm.eval()
        self.lm.requires_grad_(False)
        hidden = lm.config.hidden_size
        self.num_tokens = num_tokens
        self.teacher_dim = teacher_dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # New token rows start near the existing vocabulary (mean + a little noise), not at zero.
            vocab = lm.get_input_embeddings().weight.detach().float()
            init = vocab.mean(0) + 0.1 * vocab.std(0) * torch.randn(num_tokens, hidden)
            self.special = nn.Parameter(init.to(vocab.device))  # (K, H), fp32
            self.recon = nn.Linear(hidden, hidden, device=vocab.device)  # (H -> H), fp32
            self.align = nn.Linear(hidden, teacher_dim, device=vocab.device)  # (H -> D), fp32

    @property
    def lm_dtype(self) -> torch.dtype:
        return self.lm.get_input_embeddings().weight.dtype

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """The trainable tensors only (what an adapter file holds)."""
        return {name: tensor for name, tensor in self.state_dict().items() if not name.startswith("lm.")}

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [param for group in self.parameter_groups() for param in group["params"]]

    def parameter_groups(self) -> list[dict]:
        """Optimiser parameter groups, one per trainable part, named so each can get its own learning rate."""
        return [
            {"name": "special", "params": [self.special]},
            {"name": "recon", "params": list(self.recon.parameters())},
            {"name": "align", "params": list(self.align.parameters())},
        ]

    def special_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prefix: KV | None = None) -> torch.Tensor:
        """Final-layer, final-norm hidden states at the K special positions: (B, K, H).

        Inputs are left padded; the K special tokens follow every row, so they sit at the end.
        ``prefix`` (from ``prefix_kv``) holds the keys and values of P tokens that precede every row
        (the instruction): the rows then hold only what follows it, and the result is the same as
        running ``prefix + row`` (attention is causal, so the prefix's states never see the rows).
        """
        batch = input_ids.shape[0]
        tokens = self.lm.get_input_embeddings()(input_ids)  # (B, T, H)
        special = self.special.to(tokens.dtype).expand(batch, -1, -1)  # (B, K, H)
        embeds = torch.cat([tokens, special], dim=1)  # (B, T+K, H)
        mask = torch.cat([attention_mask, attention_mask.new_ones(batch, self.num_tokens)], dim=1)
        cache, past = None, 0
        if prefix is not None:
            past = prefix[0][0].shape[2]
            cache = DynamicCache([(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in prefix], config=self.lm.config)
            mask = torch.cat([mask.new_ones(batch, past), mask], dim=1)  # (B, P+T+K)
        positions = (mask.cumsum(1) - 1).clamp(min=0)[:, past:]  # padding must not shift positions
        out = self.lm.base_model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=cache is not None)
        return out.last_hidden_state[:, -self.num_tokens :]

    @torch.no_grad()
    def prefix_kv(self, prefix_ids: torch.Tensor) -> KV:
        """Keys and values of a token prefix (P,) shared by many rows, for ``special_states(prefix=...)``."""
        out = self.lm.base_model(input_ids=prefix_ids[None], use_cache=True)
        return [(layer.keys, layer.values) for layer in out.past_key_values.layers]

    def special_states_cached_prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Same result as ``special_states``, cheaper to train: the frozen LM runs the text once without
        gradients (its states cannot depend on the special tokens that follow, attention being causal),
        then only the K special positions run with gradients, attending to the cached keys/values."""
        batch = input_ids.shape[0]
        with torch.no_grad():  # not inference_mode: the cache must be usable in the graph below
            positions = (attention_mask.cumsum(1) - 1).clamp(min=0)
            prefix = self.lm.base_model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True)
        special = self.special.to(self.lm_dtype).expand(batch, -1, -1)  # (B, K, H)
        mask = torch.cat([attention_mask, attention_mask.new_ones(batch, self.num_tokens)], dim=1)
        special_positions = attention_mask.sum(1, keepdim=True) + torch.arange(self.num_tokens, device=input_ids.device)
        out = self.lm.base_model(
            inputs_embeds=special, attention_mask=mask, position_ids=special_positions, past_key_values=prefix.past_key_values, use_cache=True
        )
        return out.last_hidden_state  # (B, K, H)

    @torch.no_grad()
    def calibrate(self, h: torch.Tensor, target_norm: float) -> dict[str, float]:
        """Data-dependent init of the two projections (call once, before training, on a batch of states h).

        The final-norm states of an LLM are large (|h| ~ 240 for Qwen2.5-0.5B) while its token embeddings
        are small (~0.5), so default-initialised projections start with soft prompts hundreds of times
        larger than any token the LM has seen and embeddings ~70x the teacher's unit norm; L_align then
        spends its first hundreds of steps shrinking norms instead of learning directions. Rescaling
        ``recon`` so that mean |p| equals the mean token-embedding norm, and ``align`` so that mean |e|
        equals ``target_norm``, removes that phase. Returns the two scale factors applied.
        """
        token_norm = self.lm.get_input_embeddings().weight.float().norm(dim=-1).mean()
        recon_scale = token_norm / self.recon(h.float()).norm(dim=-1).mean()
        self.recon.weight.mul_(recon_scale)
        self.recon.bias.mul_(recon_scale)
        _, e = self.project(h)
        align_scale = target_norm / e.norm(dim=-1).mean()
        self.align.weight.mul_(align_scale)
        self.align.bias.mul_(align_scale)
        return {"recon_scale": float(recon_scale), "align_scale": float(align_scale)}

    @torch.no_grad()
    def keep_embedding(self, recon_before: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Re-express ``align`` after ``recon`` changed, so that e stays the same function of h.

        e = W_a (W_r mean_k h_k + b_r) + b_a is affine in mean_k h_k, so with the earlier recon (W_0, b_0) it is kept
        by W_a' = W_a W_0 W_r^-1 and b_a' = W_a b_0 + b_a - W_a' b_r, computed in float64 (a training run that changes
        recon for decoding only: the same embeddings up to fp32 rounding, new soft prompts). Refuses an
        ill-conditioned W_r, whose inverse would amplify that rounding."""
        device = self.recon.weight.device
        w0, b0 = (t.to(device, torch.float64) for t in recon_before)  # a resumed checkpoint's copy lives on the CPU
        wr, br = self.recon.weight.double(), self.recon.bias.double()
        condition = float(torch.linalg.cond(wr))
        if condition > MAX_RECON_CONDITION:
            raise ValueError(f"recon's weight has condition number {condition:.3g} (> {MAX_RECON_CONDITION:.0e}): align cannot be re-expressed for it without changing the embeddings")
        log.info("keep_embedding: recon condition number %.3g", condition)
        wa, ba = self.align.weight.double(), self.align.bias.double()
        target = wa @ w0  # (D, H): the map from mean h to e that must not change
        new_wa = torch.linalg.solve(wr.T, target.T).T  # new_wa @ wr = target
        self.align.weight.copy_(new_wa.to(self.align.weight.dtype))
        self.align.bias.copy_((wa @ b0 + ba - new_wa @ br).to(self.align.bias.dtype))

    def project(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, K, H) -> soft prompts p (B, K, H) and embedding e (B, D), in fp32."""
        p = self.recon(h.float())
        e = self.align(p).mean(dim=1)
        return p, e

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Returns (h, p, e) for a left-padded batch."""
        h = self.special_states(input_ids, attention_mask)
        p, e = self.project(h)
        return h, p, e

    def recon_loss(self, p: torch.Tensor, response_ids: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
        """Mean next-token CE of the frozen LM reading right-padded responses (B, R) after soft prompts p."""
        batch, k = p.shape[0], p.shape[1]
        embeds = torch.cat([p.to(self.lm_dtype), self.lm.get_input_embeddings()(response_ids)], dim=1)
        mask = torch.cat([response_mask.new_ones(batch, k), response_mask], dim=1)
        logits = self.lm(inputs_embeds=embeds, attention_mask=mask).logits  # (B, K+R, V)
        predictions = logits[:, k - 1 : -1]  # position k-1+t predicts response token t
        labels = response_ids.masked_fill(response_mask == 0, -100)
        return F.cross_entropy(predictions.float().flatten(0, 1), labels.flatten(), ignore_index=-100)

    @staticmethod
    def align_loss(e: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(e, target.to(e.dtype))

    def lens(self, h: torch.Tensor, top_k: int = 5) -> torch.Tensor:
        """Logit lens: top-k token ids of the LM head at each special state, (B, K, top_k)."""
        logits = self.lm.get_output_embeddings()(h.to(self.lm_dtype))
        return logits.topk(top_k, dim=-1).indices

    def generate(self, p: torch.Tensor, max_new_tokens: int, eos_token_id: int | list[int], pad_token_id: int) -> torch.Tensor:
        """Greedy decoding from soft prompts p (B, K, H) with a KV cache; rows stop at EOS -> (B, <=N) ids."""
        mask = torch.ones(p.shape[:2], dtype=torch.long, device=p.device)
        return self.lm.generate(
            inputs_embeds=p.to(self.lm_dtype),
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            use_cache=True,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
        )
