"""Annotation labels → a `FeedbackDataset`, annotator ids and screen order kept, so `rewardlab train` reads it."""

from __future__ import annotations

from rewardlab.collect.store import Store
from rewardlab.collect.tasks import task_type
from rewardlab.data.dataset import FeedbackDataset


def export_project(store: Store, project_id: int) -> FeedbackDataset:
    """Every label of the project as feedback rows; ``meta`` keeps item id, shown order and seconds spent."""
    settings = store.project_settings(project_id)
    task, config = task_type(settings["task_type"]), settings["config"]
    dataset = FeedbackDataset(name=settings["name"])
    for label in store.project_labels(project_id):
        payload, value = label["payload"], label["value"]
        prompt_id = dataset.add_prompt(payload["prompt"])
        response_ids = [dataset.add_response(prompt_id, text) for text in payload["responses"]]
        meta = {"item": label["item"], "shown_order": label["shown_order"], "seconds": label["seconds"],
                "project": settings["name"]}
        task.add_feedback(dataset, payload, value, config, prompt_id, response_ids, label["annotator"], meta)
    return dataset
