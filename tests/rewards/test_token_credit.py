"""Token-level credit: exact sums, the planted token found, the torch heads as the heads score, exports, heat-maps."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rewardlab.errors import DataError, InvalidValueError, ModelError
from rewardlab.report import Report, Section, TokenHeatmap, render_html, render_markdown
from rewardlab.rewards.credit_export import (
    credit_record_file,
    read_token_credits,
    write_credit_html,
    write_token_credits,
)
from rewardlab.rewards.credit_twin import MiniLMTwin, torch_reward
from rewardlab.rewards.heads import make_head
from rewardlab.rewards.model import RewardModel
from rewardlab.rewards.token_credit import CreditConfig, TokenCredit, summarize_credits, token_credit
from synthetic import preference_dataset, synthetic_problem

MARKER = "volcano"  # one MiniLM token
TEMPLATES = ["I walked to the {} after lunch.", "She bought a new {} for the house.", "The {} was bigger than expected.",
             "We talked about the {} all evening.", "My brother drew a {} on the wall.",
             "They found an old {} in the attic.", "Please put the {} next to the door.",
             "A small {} appeared in the photo.", "He wrote a poem about a {}.", "Our teacher showed us a {} today.",
             "There is a {} behind the school.", "The museum has a famous {}."]
FILLERS = ["table", "garden", "window", "bicycle", "lamp", "river", "chair", "book", "car", "tree", "cup", "road"]
PROMPTS = ["Tell me something.", "Say a sentence.", "What happened?"]
HELD_OUT = [("Describe your day.", f"Yesterday I saw a {MARKER} near the lake with my friends."),
            ("Any news?", f"The children painted a bright {MARKER} in art class today.")]


def planted_dataset(features_rows: int = 1) -> object:
    """Pairs that differ in one word: the preferred response says `MARKER` where the other says a filler."""
    rows = [(PROMPTS[i % 3], t.format(MARKER), t.format(FILLERS[(i + k) % len(FILLERS)]))
            for k in range(features_rows) for i, t in enumerate(TEMPLATES)]
    return preference_dataset("planted", rows)


@pytest.fixture(scope="module")
def planted() -> RewardModel:
    """A linear BT head on MiniLM (torch fp32, so the twin is the model's own encoder) that rewards `MARKER`."""
    return RewardModel.create("bt-linear", encoder="minilm").fit(planted_dataset(2))  # type: ignore[arg-type]


def credits_of(model: RewardModel, method: str, pairs: list[tuple[str, str]] = HELD_OUT, steps: int = 16) -> list[TokenCredit]:
    return token_credit(model, [p for p, _ in pairs], [r for _, r in pairs], config=CreditConfig(method, steps))


@pytest.mark.parametrize("method", ["attention", "gradient"])
def test_token_rewards_sum_to_the_models_reward(planted: RewardModel, method: str) -> None:
    credits = credits_of(planted, method)
    for credit, (prompt, response) in zip(credits, HELD_OUT):
        # scored on its own (torch MiniLM pads a batch, which moves a vector by ~1e-7)
        assert credit.reward == pytest.approx(float(planted.score([prompt], [response])[0]), abs=1e-6)
        assert math.fsum(credit.rewards) == pytest.approx(credit.reward, abs=1e-9)
        assert len(credit.rewards) == len(credit.tokens) == len(credit.offsets)
        assert [credit.response[a:b] for a, b in credit.offsets] == credit.tokens
        # minilm is its own twin: the attributed reward is the model's, up to float noise
        assert credit.twin_reward == pytest.approx(credit.reward, abs=1e-4)


def test_the_planted_token_gets_the_largest_share_by_gradient(planted: RewardModel) -> None:
    for credit in credits_of(planted, "gradient"):
        assert credit.reward > 0
        assert credit.tokens[int(np.argmax(credit.rewards))] == MARKER
        # integrated gradients are near-complete: the evenly spread residual is the blank response's reward, small
        # beside the marker's credit
        assert max(credit.rewards) > 3 * abs(credit.residual) / len(credit.tokens)


def test_attention_shares_are_the_encoders_whatever_the_head(planted: RewardModel) -> None:
    """The encoder is frozen: two heads get the same token shares, scaled by their own rewards (opposite signs
    here), which is why the gradient method is the one that says what a head cares about."""
    flipped = RewardModel(make_head("bt-linear"), planted.encoder, planted.features)
    flipped.head.dim_ = planted.head.dim_  # type: ignore[attr-defined]
    flipped.head.target_mean_, flipped.head.target_std_ = 0.0, 1.0  # type: ignore[attr-defined]
    import copy

    flipped.head.net_ = copy.deepcopy(planted.head.net_)  # type: ignore[attr-defined]
    for parameter in flipped.head.net_.parameters():  # type: ignore[attr-defined]
        parameter.data.neg_()
    a, b = credits_of(planted, "attention")[0], credits_of(flipped, "attention")[0]
    assert b.reward == pytest.approx(-a.reward, rel=1e-5)
    assert np.allclose(np.array(a.rewards) / a.reward, np.array(b.rewards) / b.reward, atol=1e-9)
    assert all(r < 0 for r in b.rewards)


def test_joint_features_credit_only_the_response(planted: RewardModel) -> None:
    model = RewardModel.create("bt-linear", encoder=planted.encoder, features="joint").fit(planted_dataset())  # type: ignore[arg-type]
    for method in ("attention", "gradient"):
        for credit in credits_of(model, method, steps=8):
            assert math.fsum(credit.rewards) == pytest.approx(credit.reward, abs=1e-9)
            assert credit.twin_reward == pytest.approx(credit.reward, abs=1e-4)
            assert len(credit.tokens) == len(MiniLMTwin(model.encoder).tokens(credit.response).ids) - 2


def test_tokens_past_the_encoder_limit_get_nothing(planted: RewardModel) -> None:
    long = " ".join(["word"] * 300) + f" {MARKER}"
    (credit,) = credits_of(planted, "gradient", [("Go on.", long)], steps=4)
    assert credit.unseen_tokens == 301 - 254  # 256 positions, two of them [CLS] and [SEP]
    assert all(r == 0.0 for r in credit.rewards[254:])
    assert math.fsum(credit.rewards) == pytest.approx(credit.reward, abs=1e-9)


@pytest.mark.slow  # builds the int8 ONNX graph when no earlier test has
def test_an_int8_model_is_credited_through_its_fp32_twin(planted: RewardModel) -> None:
    pytest.importorskip("onnxruntime")
    int8 = RewardModel(planted.head, "minilm:int8", planted.features)
    (credit,) = credits_of(int8, "gradient", HELD_OUT[:1], steps=4)
    assert credit.encoder == "minilm:int8" and "fp32 twin of minilm:int8" in credit.attributed_with
    assert credit.reward == pytest.approx(float(int8.score([HELD_OUT[0][0]], [HELD_OUT[0][1]])[0]))
    assert math.fsum(credit.rewards) == pytest.approx(credit.reward, abs=1e-9)
    assert credit.twin_reward != credit.reward and abs(credit.twin_reward - credit.reward) < 0.1 * abs(credit.reward)


def test_encoders_and_heads_without_a_torch_path_are_refused(planted: RewardModel) -> None:
    hashing = RewardModel(planted.head, "hashing:64", "response")
    with pytest.raises(ModelError, match="hashing:64"):
        token_credit(hashing, ["p"], ["r"])
    trees = RewardModel(make_head("clf-lgbm"), planted.encoder, planted.features)
    with pytest.raises(ModelError, match="attention method"):
        token_credit(trees, ["p"], ["r"], config=CreditConfig("gradient"))
    with pytest.raises(ModelError, match="unknown credit method"):
        CreditConfig("saliency")
    with pytest.raises(ModelError, match="steps"):
        CreditConfig("gradient", steps=0)


def test_a_blank_response_is_named_by_row(planted: RewardModel) -> None:
    with pytest.raises(DataError, match="row 2, field 'response'"):
        token_credit(planted, ["a", "b"], ["fine", "   "])


@pytest.mark.parametrize("kind,aggregate", [("bt-mlp", None), ("rating-linear", None), ("bt-linear", "mean"),
                                            ("bt-mlp", "min"), ("bt-linear", "lcb")])
def test_torch_reward_is_what_the_head_predicts(kind: str, aggregate: str | None) -> None:
    import torch

    data, _ = synthetic_problem(n_prompts=60, dim=6, seed=3)
    params = {"max_epochs": 5}
    head = make_head(kind, seed=1, **params) if aggregate is None else make_head(kind, seed=1, ensemble=3,
                                                                                 aggregate=aggregate, **params)
    head.fit(data)
    x = np.random.default_rng(0).normal(size=(7, 6)).astype(np.float32)
    with torch.no_grad():
        got = torch_reward(head)(torch.from_numpy(x)).double().numpy()
    assert np.allclose(got, head.predict(x), atol=1e-5)


def test_summary_has_cis_by_prompt(planted: RewardModel) -> None:
    summary = summarize_credits(credits_of(planted, "attention"))
    assert summary["twin_gap"].n == 2 and summary["twin_gap"].value < 1e-4
    assert 0 < summary["top_share"].low <= summary["top_share"].value <= summary["top_share"].high <= 1


def test_exports_round_trip(planted: RewardModel, tmp_path: Path) -> None:
    credits = credits_of(planted, "attention")
    for name in ("credit.jsonl", "credit.parquet"):
        rows = read_token_credits(write_token_credits(credits, tmp_path / name))
        assert rows == [c.as_row() for c in credits]
        assert rows[0]["offsets"][0] == list(credits[0].offsets[0])
    with pytest.raises(DataError, match="credit.csv"):
        write_token_credits(credits, tmp_path / "credit.csv")


def test_a_record_file_keeps_its_ids_and_names_bad_rows(planted: RewardModel, tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"prompt": "Hi", "response": "A volcano.", "prompt_id": "q7", "response_id": "a1"}\n'
                    '{"prompt": "Hi", "response": "A lamp."}\n', encoding="utf-8")
    credits = credit_record_file(planted, path)
    assert [(c.prompt_id, c.response_id) for c in credits] == [("q7", "a1"), ("p2", "r2")]
    path.write_text('{"prompt": "Hi", "response": ""}\n', encoding="utf-8")
    with pytest.raises(DataError, match="rows.jsonl, row 1, field 'response'"):
        credit_record_file(planted, path)


def test_the_heat_map_escapes_the_response() -> None:
    text = 'ok <script>alert("x")</script> & done'
    offsets = [(0, 2), (3, 11), (31, 32), (33, 37)]
    heatmap = TokenHeatmap(text, offsets, [0.5, -1.0, 0.0, 0.25], caption="<b>reward</b>")
    html = render_html(Report("credit", [Section("one", [heatmap])]))
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;reward" in html
    assert "rgba(220, 38, 38, 0.8)" in html and "rgba(22, 163, 74, 0.4)" in html  # the largest |value| is darkest
    assert "alert(&quot;x&quot;)&lt;/script&gt;" in html  # the text between tokens is kept, escaped
    markdown = render_markdown(Report("credit", [Section("one", [heatmap])]))
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    assert markdown.index("&lt;script&gt;") < markdown.index("| ok |")  # sorted by |value|
    with pytest.raises(InvalidValueError, match="one value per token"):
        TokenHeatmap(text, offsets, [1.0])
    with pytest.raises(InvalidValueError, match="out of order"):
        TokenHeatmap(text, [(3, 11), (0, 2)], [1.0, 2.0])


def test_credit_html_page(planted: RewardModel, tmp_path: Path) -> None:
    pairs = [("Hi", 'A volcano <script>alert(1)</script>'), ("Hi", "A lamp.")]
    page = write_credit_html(credits_of(planted, "attention", pairs), tmp_path / "credit.html").read_text("utf-8")
    assert "<script>" not in page  # "<", "script" and ">" are three tokens, each escaped in its own span
    assert '&lt;</span><span style="background: rgba(22, 163, 74,' in page
    assert page.count('class="heatmap"') == 2 and "95% CI by prompt" in page
