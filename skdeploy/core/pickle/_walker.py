"""The walk: what each pickle opcode does, played on inert placeholders instead of objects.

:class:`Walker` simulates ``pickle.Unpickler`` and joblib's ``NumpyUnpickler`` over one pickle
stream on top of :class:`~skdeploy.core.pickle._machine.Machine`'s stack and memo. Nothing is
imported, no callable is called and no object of the file's choosing is created: a global becomes
a :class:`~skdeploy.core.pickle._values.Global` checked by the policy, a call a
:class:`~skdeploy.core.pickle._values.Call`. Constructs whose effect on the real loader cannot be
read from the file raise :class:`~skdeploy.core.pickle._errors.Unsafe`, which ends the walk.
"""

from __future__ import annotations

import _compat_pickle
import pickletools  # nosec B403 - only reads opcodes; never unpickles
from collections.abc import Callable
from typing import cast

from skdeploy.core.pickle._arrays import (
    HIDDEN_WRAPPER,
    RECONSTRUCTOR,
    array_layout,
    hides_wrapper,
    is_wrapper_args,
    is_wrapper_class,
)
from skdeploy.core.pickle._attributes import check_attribute_state
from skdeploy.core.pickle._errors import Corrupt, Unsafe
from skdeploy.core.pickle._findings import Findings
from skdeploy.core.pickle._machine import Machine
from skdeploy.core.pickle._stream import Stream
from skdeploy.core.pickle._values import Call, Dictionary, Global, Opaque

__all__ = ["Walker"]

_HIGHEST_PROTOCOL = max(op.proto for op in pickletools.opcodes)

#: Opcodes that push their argument as it was read.
_PUSH_ARGUMENT = (
    "INT",
    "BININT",
    "BININT1",
    "BININT2",
    "LONG",
    "LONG1",
    "LONG4",
    "FLOAT",
    "BINFLOAT",
    "STRING",
    "BINSTRING",
    "SHORT_BINSTRING",
    "BINBYTES",
    "SHORT_BINBYTES",
    "BINBYTES8",
    "BYTEARRAY8",
    "UNICODE",
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
)


class Walker(Machine):
    """Simulates ``pickle.Unpickler`` (and joblib's array reading) over one pickle stream."""

    def __init__(self, stream: Stream, findings: Findings, *, joblib_arrays: bool, depth: int):
        super().__init__(stream, findings, depth=depth)
        self.joblib_arrays = joblib_arrays
        self.handlers = {
            **dict.fromkeys(_PUSH_ARGUMENT, self.stack_push_arg),
            **self.value_handlers(),
            **self.object_handlers(),
        }

    def value_handlers(self) -> dict[str, Callable[[object], object]]:
        """The opcodes that push constants, build containers and move values around."""
        return {
            "NONE": lambda _: self.stack.append(None),
            "NEWTRUE": lambda _: self.stack.append(True),
            "NEWFALSE": lambda _: self.stack.append(False),
            "EMPTY_LIST": lambda _: self.stack.append([]),
            "EMPTY_TUPLE": lambda _: self.stack.append(()),
            "EMPTY_DICT": lambda _: self.stack.append(Dictionary()),
            "EMPTY_SET": lambda _: self.stack.append([]),
            "MARK": self.op_mark,
            "POP": self.op_pop,
            "POP_MARK": lambda _: self.pop_mark(),
            "DUP": lambda _: self.stack.append(self.top()),
            "LIST": lambda _: self.push_marked(self.contain),
            "TUPLE": lambda _: self.push_marked(self.new_tuple),
            "TUPLE1": lambda _: self.op_tuple(1),
            "TUPLE2": lambda _: self.op_tuple(2),
            "TUPLE3": lambda _: self.op_tuple(3),
            "DICT": lambda _: self.push_marked(lambda items: Dictionary(self.pairs(items))),
            "FROZENSET": lambda _: self.push_marked(self.contain),
            "APPEND": self.op_append,
            "APPENDS": self.op_appends,
            "ADDITEMS": self.op_appends,
            "SETITEM": self.op_setitem,
            "SETITEMS": self.op_setitems,
            "GET": self.op_get,
            "BINGET": self.op_get,
            "LONG_BINGET": self.op_get,
            "PUT": self.op_put,
            "BINPUT": self.op_put,
            "LONG_BINPUT": self.op_put,
            "MEMOIZE": lambda _: self.op_put(len(self.memo)),
        }

    def object_handlers(self) -> dict[str, Callable[[object], object]]:
        """The opcodes that name globals and call or build them, and the protocol's own."""
        return {
            "GLOBAL": self.op_global,
            "STACK_GLOBAL": self.op_stack_global,
            "INST": self.op_inst,
            "OBJ": self.op_obj,
            "REDUCE": self.op_reduce,
            "NEWOBJ": self.op_newobj,
            "NEWOBJ_EX": self.op_newobj_ex,
            "BUILD": self.op_build,
            "PERSID": self.op_persid,
            "BINPERSID": self.op_persid,
            "EXT1": self.op_ext,
            "EXT2": self.op_ext,
            "EXT4": self.op_ext,
            "NEXT_BUFFER": self.op_next_buffer,
            "READONLY_BUFFER": lambda _: self.top(),
            "FRAME": self.op_frame,
            "PROTO": self.op_proto,
        }

    def pairs(self, items: list[object]) -> list[tuple[object, object]]:
        if len(items) % 2:
            raise Corrupt("a dictionary has a key without a value")
        self.contain(items)
        return list(zip(items[::2], items[1::2], strict=True))

    def stack_push_arg(self, arg: object) -> None:
        self.stack.append(arg)

    def refuse_mutation(self, target: object, what: str) -> None:
        if isinstance(target, Global):
            self.findings.refuse(
                f"{target.qualname}: {what} would change the module or class itself, not an "
                "instance created by the pickle"
            )

    # -- opcodes ---------------------------------------------------------------------------

    def op_proto(self, arg: object) -> None:
        assert isinstance(arg, int)
        if arg > _HIGHEST_PROTOCOL:
            raise Corrupt(f"pickle protocol {arg} is newer than any this Python knows")
        self.proto = arg

    def op_mark(self, _: object) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def op_pop(self, _: object) -> None:
        if self.stack:
            del self.stack[-1]
        else:
            self.pop_mark()

    def op_tuple(self, size: int) -> None:
        if len(self.stack) < size:
            raise Corrupt("a tuple opcode needs more values than the stack holds")
        items = self.new_tuple(self.stack[-size:])
        del self.stack[-size:]
        self.stack.append(items)

    def new_tuple(self, items: list[object]) -> tuple[object, ...]:
        """A tuple; joblib's array class may only sit in ``(class, object, None)``."""
        if any(map(hides_wrapper, items)) and not is_wrapper_args(tuple(items)):
            raise Unsafe(HIDDEN_WRAPPER)
        return tuple(items)

    def contain(self, items: list[object]) -> list[object]:
        """A list or set's items: never joblib's array class, nor the tuple that builds one."""
        if any(map(hides_wrapper, items)):
            raise Unsafe(HIDDEN_WRAPPER)
        self.findings.contained += len(items)
        return items

    def op_append(self, _: object) -> None:
        value = self.pop()
        self.extend(self.top(), [value])

    def op_appends(self, _: object) -> None:
        items = self.pop_mark()
        self.extend(self.top(), items)

    def extend(self, target: object, items: list[object]) -> None:
        self.refuse_mutation(target, "APPEND")
        self.contain(items)
        if isinstance(target, list):
            target.extend(items)

    def op_setitem(self, _: object) -> None:
        value = self.pop()
        key = self.pop()
        self.update(self.top(), self.pairs([key, value]))

    def op_setitems(self, _: object) -> None:
        pairs = self.pairs(self.pop_mark())
        self.update(self.top(), pairs)

    def update(self, target: object, pairs: list[tuple[object, object]]) -> None:
        self.refuse_mutation(target, "SETITEM")
        if isinstance(target, Dictionary):
            target.pairs.extend(pairs)

    def op_get(self, arg: object) -> None:
        assert isinstance(arg, int)
        if arg not in self.memo:
            raise Corrupt(f"memo entry {arg} is read before it is written")
        self.stack.append(self.memo[arg])

    def op_put(self, arg: object) -> None:
        assert isinstance(arg, int)
        if arg < 0:
            raise Corrupt("negative memo index")
        self.memo[arg] = self.top()

    def record_global(self, module: str, name: str) -> Global:
        """The global the unpickler would import, after its Python 2 renaming (protocol < 3)."""
        if self.proto < 3:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        return self.findings.record_global(module, name)

    def op_global(self, arg: object) -> None:
        assert isinstance(arg, tuple)
        module, name = arg
        self.stack.append(self.record_global(module, name))

    def op_stack_global(self, _: object) -> None:
        name = self.pop()
        module = self.pop()
        if not (isinstance(module, str) and isinstance(name, str)):
            raise Corrupt("STACK_GLOBAL needs a module and a name given as strings")
        self.stack.append(self.record_global(module, name))

    def op_inst(self, arg: object) -> None:
        assert isinstance(arg, tuple)
        module, name = arg
        cls = self.record_global(module, name)
        self.refuse_wrapper_call(cls)
        self.push_marked(lambda items: Call(cls, self.new_tuple(items)))

    def op_obj(self, _: object) -> None:
        items = self.pop_mark()
        if not items:
            raise Corrupt("OBJ without a class")
        self.refuse_wrapper_call(items[0])
        self.stack.append(Call(items[0], self.new_tuple(items[1:])))

    def refuse_wrapper_call(self, func: object) -> None:
        """Refuse calls that build joblib's placeholder other than as joblib writes it."""
        if is_wrapper_class(func):
            raise Unsafe(HIDDEN_WRAPPER)
        if not isinstance(func, Global):
            raise Unsafe(
                "the pickle calls an object it built itself (a functools.partial, say) instead "
                "of a named function or class: what that call does cannot be read from the file"
            )

    def op_reduce(self, _: object) -> None:
        args = self.pop()
        func = self.pop()
        if isinstance(func, Global) and func.qualname == RECONSTRUCTOR and is_wrapper_args(args):
            self.stack.append(Call(func, args, wrapper=self.joblib_arrays))
            return
        self.refuse_wrapper_call(func)
        if hides_wrapper(args):
            raise Unsafe(HIDDEN_WRAPPER)
        if isinstance(func, Global) and func.name == "_ufunc_reconstruct":
            self.stack.append(self.ufunc(func, args))
            return
        self.stack.append(Call(func, args))

    def ufunc(self, func: Global, args: object) -> object:
        """numpy's ``_ufunc_reconstruct(module, name)`` imports by string: check that import."""
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and isinstance(args[0], str)
            and isinstance(args[1], str)
        ):
            return self.findings.record_global(args[0], args[1])
        self.findings.refuse(
            f"{func.qualname}: called with computed arguments, so the global it imports is unknown"
        )
        return Call(func, args)

    def op_newobj(self, _: object) -> None:
        args = self.pop()
        cls = self.pop()
        if is_wrapper_class(cls) and isinstance(args, tuple) and not args:
            self.stack.append(Call(cls, args, wrapper=self.joblib_arrays))
            return
        self.refuse_wrapper_call(cls)
        if hides_wrapper(args):
            raise Unsafe(HIDDEN_WRAPPER)
        self.stack.append(Call(cls, args))

    def op_newobj_ex(self, _: object) -> None:
        kwargs = self.pop()
        args = self.pop()
        cls = self.pop()
        self.refuse_wrapper_call(cls)
        if hides_wrapper(args) or hides_wrapper(kwargs):
            raise Unsafe(HIDDEN_WRAPPER)
        self.stack.append(Call(cls, (args, kwargs)))

    def op_frame(self, size: object) -> None:
        assert isinstance(size, int)
        stream = self.stream
        if stream.tell() < stream.frame_end:
            raise Corrupt("a pickle frame begins before the previous one ends")
        stream.frame_end = stream.tell() + size

    def op_persid(self, arg: object) -> None:
        if arg is None:  # BINPERSID takes its id from the stack
            self.pop()
        self.findings.refuse(
            "persistent id: the pickle refers to objects stored elsewhere, and joblib.load "
            "has no persistent_load hook to find them"
        )
        self.stack.append(Opaque("persistent id"))

    def op_ext(self, arg: object) -> None:
        self.findings.refuse(
            f"extension code {arg}: the pickle names a class through copyreg's extension "
            "registry, which is empty in the container"
        )
        self.stack.append(Opaque(f"extension {arg}"))

    def op_next_buffer(self, _: object) -> None:
        self.findings.refuse(
            "out-of-band buffer: the pickle was written with a buffer_callback, and a model file "
            "loaded by joblib.load cannot supply the buffers"
        )
        self.stack.append(Opaque("buffer"))

    def op_build(self, _: object) -> None:
        state = self.pop()
        obj = self.top()
        self.refuse_mutation(obj, "BUILD")
        if hides_wrapper(state):
            raise Unsafe(HIDDEN_WRAPPER)
        pair = isinstance(state, tuple) and len(state) == 2
        parts = cast(tuple[object, object], state) if pair else (state, None)
        check_attribute_state(parts[0])
        check_attribute_state(parts[1])
        dict_state = cast(tuple[object, object], state)[0] if pair else state
        if isinstance(dict_state, Dictionary):
            version = dict_state.get("_sklearn_version")
            if isinstance(version, str):
                self.findings.versions[version] = None
        if not isinstance(obj, Call):
            return
        obj.builds += 1
        obj.state = state
        if obj.wrapper:
            if obj.builds > 1:
                raise Unsafe("a joblib array placeholder is built twice")
            self.skip_joblib_array(state)
            self.stack[-1] = Opaque("numpy array")

    def skip_joblib_array(self, state: object) -> None:
        """Consume the data joblib reads after its placeholder, exactly as ``read_array`` does.

        joblib's loader reads the array's bytes straight from the file, past the pickle machine:
        so this is only exact when no pickle frame is still open and
        :func:`~skdeploy.core.pickle._arrays.array_layout` reads the placeholder exactly.
        Anything else is refused.
        """
        stream = self.stream
        if stream.tell() < stream.frame_end:
            raise Unsafe("a joblib array's data starts inside a pickle frame")
        layout = array_layout(state)
        if layout.has_objects:
            nested = Walker(stream, self.findings, joblib_arrays=False, depth=self.depth + 1)
            nested.run()
            return
        if layout.aligned:
            padding = stream.exact(1, "a joblib array's padding")[0]
            stream.skip_raw(padding, "a joblib array's padding")
        stream.skip_raw(layout.items * layout.itemsize, "a joblib array's data")
