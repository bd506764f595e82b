"""The thingpress stack: its configuration, its constructs, the stack that assembles them.

Importing the package puts the AWS provider's bindings in place by submodule
(:func:`stacks.bindings.by_submodule`), so that a construct's import loads only its resources.
"""

from stacks.bindings import by_submodule

by_submodule()
