"""Training recipes as data: the settings that reproduce a shipped model.

A recipe is ``deconvnet_tf/models/recipes/<name>.json``: ``{"description", "data", "config"}``,
where ``config`` holds :class:`~deconvnet_tf.training.config.TrainConfig` fields (everything
but the dataset, which the user passes). ``deconvnet-train --recipe NAME --data DIR`` applies
it (flags, ``--config`` and ``--set`` still override it); the shipped model's card names its
recipe. Add a recipe by adding a file.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["RECIPES_DIR", "get_recipe", "list_recipes"]

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"


def list_recipes() -> list[str]:
    """Names of the bundled recipes, sorted."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.json"))


def get_recipe(name: str) -> dict:
    """The recipe ``name``: ``{"name", "description", "data", "config"}``.

    Raises:
        ValueError: unknown name (the message lists the recipes) or a malformed file.
    """
    path = RECIPES_DIR / f"{name}.json"
    if not name or "/" in name or not path.is_file():
        raise ValueError(f"unknown recipe {name!r}; available: {', '.join(list_recipes())}")
    try:
        recipe = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"recipe file {str(path)!r} is not valid JSON: {err}") from err
    if not isinstance(recipe, dict) or not isinstance(recipe.get("config"), dict):
        raise ValueError(f"recipe file {str(path)!r} needs a 'config' object of TrainConfig "
                         "fields")
    return {"name": name, "description": recipe.get("description", ""),
            "data": recipe.get("data", ""), "config": dict(recipe["config"])}
