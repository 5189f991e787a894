"""A package that is also callable as its main function (``fastopt.optimize``, ``fastopt.walkforward``).

``fastopt.optimize`` names both the package ``fastopt/optimize/`` and the public function
``optimize``: the import system binds the package to the ``fastopt`` attribute as soon as any of
its modules is imported, so the package itself must be callable. ``make_callable`` gives the
package module that behaviour; the function is imported only on the first call, so importing a
kernel module of the package stays cheap.
"""
from __future__ import annotations

import importlib
import inspect
import sys
import types
from typing import Any


class CallableModule(types.ModuleType):
    """A module whose call runs ``<module>.<_call_target module>.<_call_target name>``."""

    _call_target: tuple[str, str]

    def _target(self) -> Any:
        module_name, function_name = self._call_target
        return getattr(importlib.import_module(module_name), function_name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self._target())


def make_callable(module_name: str, target_module: str, function_name: str) -> None:
    """Make ``sys.modules[module_name]`` callable as ``target_module.function_name``."""
    module = sys.modules[module_name]
    module.__class__ = CallableModule
    module._call_target = (target_module, function_name)
