"""A GraphQL validation rule ariadne lacks: a cap on how deeply a query nests fields."""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.validation import ASTValidationRule, ValidationContext


def depth_limit(max_depth: int) -> type[ASTValidationRule]:
    """A rule that refuses an operation whose fields nest more than ``max_depth`` levels.

    Fragments count at the depth they are spread; each fragment is measured once
    (so a tree of spreads costs linear time) and a fragment cycle, which the
    standard rules report, adds nothing.
    """

    class DepthLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragment_depths: dict[str, int] = {}

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            depth = self.depth(node.selection_set)
            if depth > max_depth:
                self.report_error(
                    GraphQLError(
                        f"the operation nests fields {depth} levels deep; the limit is {max_depth}",
                        node,
                        extensions={"status": 400},
                    )
                )

        def depth(self, selection_set: SelectionSetNode | None) -> int:
            """How many field levels ``selection_set`` nests (0 for none)."""
            deepest = 0
            for selection in selection_set.selections if selection_set else ():
                if isinstance(selection, FieldNode):
                    deepest = max(deepest, 1 + self.depth(selection.selection_set))
                elif isinstance(selection, InlineFragmentNode):
                    deepest = max(deepest, self.depth(selection.selection_set))
                elif isinstance(selection, FragmentSpreadNode):
                    deepest = max(deepest, self.fragment_depth(selection.name.value))
            return deepest

        def fragment_depth(self, name: str) -> int:
            if name not in self.fragment_depths:
                self.fragment_depths[name] = 0  # while measuring: a cycle adds nothing
                fragment = self.context.get_fragment(name)
                if fragment is not None:
                    self.fragment_depths[name] = self.depth(fragment.selection_set)
            return self.fragment_depths[name]

    return DepthLimit
