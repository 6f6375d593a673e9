"""Contracts of the training service: the commands it answers on loupe.training.commands."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .lookout import ProjectName, Tag, TagKey
from .messages import Command

ModelVersion = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,9}$")]


class TagModel(Command):
    operation: Literal["TagModel"] = "TagModel"
    project_name: ProjectName
    model_version: ModelVersion
    tags: list[Tag]


class UntagModel(Command):
    operation: Literal["UntagModel"] = "UntagModel"
    project_name: ProjectName
    model_version: ModelVersion
    tag_keys: list[TagKey]


class ListModelTags(Command):
    operation: Literal["ListModelTags"] = "ListModelTags"
    project_name: ProjectName
    model_version: ModelVersion


TrainingCommand = Annotated[TagModel | UntagModel | ListModelTags, Field(discriminator="operation")]
