"""Annotation labels → a `FeedbackDataset`, annotator ids and screen order kept, so `rewardlab train` reads it."""

from __future__ import annotations

from rewardlab.collect.store import Store
from rewardlab.data.dataset import FeedbackDataset
from rewardlab.data.types import Comparison, Correction, Critique, Label, Ranking, Rating, StepLabel


def export_project(store: Store, project_id: int) -> FeedbackDataset:
    """Every label of the project as feedback rows; ``meta`` keeps item id, shown order and seconds spent."""
    settings = store.project_settings(project_id)
    task, config = settings["task_type"], settings["config"]
    dataset = FeedbackDataset(name=settings["name"])
    for label in store.project_labels(project_id):
        payload, value = label["payload"], label["value"]
        prompt_id = dataset.add_prompt(payload["prompt"])
        response_ids = [dataset.add_response(prompt_id, text) for text in payload["responses"]]
        meta = {"item": label["item"], "shown_order": label["shown_order"], "seconds": label["seconds"],
                "project": settings["name"]}
        who = label["annotator"]
        if task == "pairwise":
            dataset.add(Comparison(prompt_id, response_ids[0], response_ids[1], value["choice"], value.get("strength"),
                                   annotator_id=who, meta=meta))
        elif task == "ranking":
            dataset.add(Ranking(prompt_id, tuple(response_ids[i] for i in value["order"]), annotator_id=who, meta=meta))
        elif task == "rating":
            dataset.add(Rating(response_ids[0], value["score"], tuple(config["scale"]), annotator_id=who, meta=meta))
        elif task == "binary":
            dataset.add(Label(response_ids[0], value["correct"], annotator_id=who, meta=meta))
        elif task == "correction":
            dataset.add(Correction(response_ids[0], value["text"], annotator_id=who, meta=meta))
        elif task == "critique":
            dataset.add(Critique(response_ids[0], value["text"], annotator_id=who, meta=meta))
        else:
            for step, step_value in enumerate(value["steps"]):
                dataset.add(StepLabel(response_ids[0], step, step_value, annotator_id=who,
                                      meta={**meta, "step_text": payload["steps"][step]}))
    return dataset
