"""Old names kept for one release. The API settled on one name per idea (``batch_size``, ``top_k``,
``top_p``, ``folder`` for a folder and ``path`` for a file); a caller using an old keyword gets the same
result and a DeprecationWarning that names the new one."""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, TypeVar

__all__ = ["renamed"]

F = TypeVar("F", bound=Callable[..., Any])


def renamed(**old_to_new: str) -> Callable[[F], F]:
    """Decorator: accept each keyword argument ``old`` as ``new``, with a DeprecationWarning."""

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{func.__qualname__}() got both {old}= and {new}=; "
                                        f"{old} is the old name of {new}")
                    warnings.warn(f"{func.__qualname__}({old}=...) is now {func.__qualname__}({new}=...)",
                                  DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap
