"""Function probes (module:qualname) and line probes (file:line).

Function targets are hooked when their module is imported (a meta-path finder wraps the
loader's ``exec_module``) or at once if it already is: the attribute is replaced by a wrapper,
and every other module that had bound the same function object (``from x import f``) is patched
too. Line targets use ``sys.monitoring`` LINE events on the code objects of that file only
(Python 3.12+), or ``sys.settrace`` with a tracer that follows only frames of that file.
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
import sys
import threading
import types
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from .plan import FunctionTarget, LineTarget


ModuleCallback = Callable[[types.ModuleType], None]

_is = operator.is_
_repeat = itertools.repeat


# ----- import watching ----------------------------------------------------------------------


class _NotifyingLoader:
    """Stands in for a module's loader for the duration of one import, then steps aside."""

    def __init__(self, loader: Any, watcher: "ImportWatcher", name: str) -> None:
        self._memlens_loader = loader
        self._memlens_watcher = watcher
        self._memlens_name = name

    def create_module(self, spec: Any) -> Any:
        create = getattr(self._memlens_loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: types.ModuleType) -> None:
        loader = self._memlens_loader
        spec = getattr(module, "__spec__", None)
        # The module keeps its real loader: nothing that inspects it later sees the probe.
        if spec is not None and spec.loader is self:
            spec.loader = loader
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = loader
        existing = set(sys.modules)  # the watched module is in it already: importlib adds it first
        loader.exec_module(module)
        self._memlens_watcher.notify(self._memlens_name, module, existing)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._memlens_loader, name)


class ImportWatcher:
    """A meta-path finder that calls back once a watched module has been executed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: Dict[str, List[ModuleCallback]] = {}
        # The names of the modules that existed when the import now calling back began (None
        # outside callbacks, and for a module imported before it was watched); per thread, as
        # threads import at once.
        self._existing = threading.local()

    def install(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def watch(self, name: str, callback: ModuleCallback) -> None:
        module = sys.modules.get(name)
        if module is not None and not _is_initialising(module):
            self._call_back(callback, module, None)  # imported before: no import of its own to go by
            return
        with self._lock:
            self._callbacks.setdefault(name, []).append(callback)

    def modules_before_import(self) -> Optional[Set[str]]:
        """In a callback: the names of the modules that existed when the watched module's import
        began (the others came with it); None where the watched module was imported before."""
        return getattr(self._existing, "names", None)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self._callbacks:
            return None
        for finder in list(sys.meta_path):
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _NotifyingLoader(spec.loader, self, fullname)
            return spec
        return None

    def invalidate_caches(self) -> None:
        pass

    def notify(self, name: str, module: types.ModuleType, existing: Optional[Set[str]] = None) -> None:
        with self._lock:
            callbacks = self._callbacks.pop(name, [])
        for callback in callbacks:
            self._call_back(callback, module, existing)

    def _call_back(self, callback: ModuleCallback, module: types.ModuleType, existing: Optional[Set[str]]) -> None:
        outer = getattr(self._existing, "names", None)  # a callback's own import of another watched module
        self._existing.names = existing
        try:
            _call_quietly(callback, module)
        finally:
            self._existing.names = outer


def _call_quietly(callback: ModuleCallback, module: types.ModuleType) -> None:
    # Callbacks run inside the target's import statement: an exception would be the target's.
    try:
        callback(module)
    except Exception as exc:
        try:
            sys.stderr.write(f"memlens: probe callback for {module.__name__} failed: {type(exc).__name__}: {exc}\n")
        except Exception:
            pass


def _is_initialising(module: types.ModuleType) -> bool:
    spec = getattr(module, "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


# ----- code objects -------------------------------------------------------------------------


def code_lines(code: types.CodeType) -> Set[int]:
    """Lines that have instructions in this code object (not in nested ones)."""
    co_lines = getattr(code, "co_lines", None)
    if co_lines is not None:
        return {line for _start, _end, line in co_lines() if line is not None}
    import dis

    return {line for _offset, line in dis.findlinestarts(code) if line is not None}


def all_code_objects(code: types.CodeType) -> Iterable[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from all_code_objects(const)


def last_line(code: types.CodeType) -> int:
    return max(
        (max(code_lines(c), default=c.co_firstlineno) for c in all_code_objects(code)), default=code.co_firstlineno
    )


def lines_with_code(path: str) -> Set[int]:
    """Every line of a source file that compiles to at least one instruction."""
    with open(path, "rb") as handle:
        source = handle.read()
    module_code = compile(source, path, "exec", dont_inherit=True)
    lines: Set[int] = set()
    for code in all_code_objects(module_code):
        lines |= code_lines(code)
    return lines


def check_line_target(target: LineTarget) -> Optional[str]:
    """None if the line has code; else the reason it can never be probed."""
    if not os.path.isfile(target.file):
        return f"{target.file} does not exist"
    try:
        lines = lines_with_code(target.file)
    except SyntaxError as exc:
        return f"{target.file} does not compile: {exc.msg} (line {exc.lineno})"
    except (OSError, ValueError) as exc:
        return f"{target.file} cannot be read: {exc}"
    if target.line not in lines:
        return f"line {target.line} of {target.file} has no code"
    return None


# ----- torch.compile -----------------------------------------------------------------------
#
# Every wrapper reads ``_is_compiling`` at each call. Once torch is imported it is
# torch.compiler.is_compiling, which Dynamo folds to True while it traces: the wrapper is then
# traced straight through to the function, with nothing of the probe in the graph (Dynamo cannot
# trace the probe's clocks and I/O, and fullgraph=True would fail on them). The probe never
# imports torch itself.


def _not_compiling() -> bool:
    return False


_is_compiling: Callable[[], bool] = _not_compiling

# Ids of hooks whose wrapper Dynamo traced into a compiled caller, reported as notes later (at
# the next probe point, sample or exit): nothing that talks to the launcher may run in there.
traced_hooks: Dict[int, bool] = {}


def _traced_by_dynamo(hook_id: int) -> None:
    traced_hooks[hook_id] = True


# What torch.compiler.assume_constant_result sets (set here: that decorator would import
# torch._dynamo into the target): Dynamo runs the function once, at trace time, instead of
# tracing it, and puts nothing of it in the graph. Were the mark ever ignored, the body is a dict
# store, which Dynamo traces as a side effect without a graph break.
_traced_by_dynamo._dynamo_marked_constant = True  # type: ignore[attr-defined]


def on_torch_imported(torch: Any) -> None:
    global _is_compiling
    check = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if check is None:
        check = getattr(getattr(torch, "_utils", None), "is_compiling", None)
    # Dynamo folds the function itself: if a target named it, take the original, not our wrapper.
    check = getattr(check, "__memlens_original__", check)
    if callable(check):
        _is_compiling = check


# ----- function probes ----------------------------------------------------------------------


class NotProbeable(Exception):
    pass


_hooks_by_id: Dict[int, "Hook"] = {}


def report_traced(runtime: Any) -> None:
    """Notes for the targets of hooks that Dynamo traced since the last call."""
    for hook_id in list(traced_hooks):
        traced_hooks.pop(hook_id, None)
        hook = _hooks_by_id.get(hook_id)
        if hook is not None:
            runtime.note_compiled(hook.targets)


class Hook:
    """One patched function and the targets that name it: however many targets (or aliases) name
    it, it is wrapped once, and each call opens one scope per target, outermost first."""

    __slots__ = ("fn", "targets", "sites", "target_ids", "file", "line", "end_line", "runtime", "wrapper")

    def __init__(self, fn: Any, runtime: Any) -> None:
        self.fn = fn
        self.targets: List[FunctionTarget] = []
        self.sites: List[Any] = []  # the runtime's Site of each target, at this function's file and line
        self.target_ids: Set[str] = set()
        self.file, self.line, self.end_line = _location(fn)
        self.runtime = runtime
        self.wrapper: Any = None
        _hooks_by_id[id(self)] = self

    def add(self, target: FunctionTarget) -> None:
        if target.id not in self.target_ids:
            self.target_ids.add(target.id)
            self.targets.append(target)
            self.sites.append(self.runtime.site(target, self.file, self.line))

    def enter(self) -> List[Any]:
        runtime = self.runtime
        if traced_hooks:
            report_traced(runtime)
        return [runtime.enter_site(site) for site in self.sites]

    def leave(self, scopes: List[Any], exc: Optional[BaseException]) -> None:
        runtime = self.runtime
        for scope in reversed(scopes):
            runtime.exit(scope, exc)


def make_wrapper(fn: Callable[..., Any], hook: Hook) -> Callable[..., Any]:
    """A wrapper that opens the hook's scopes around each call of ``fn`` (awaited, for coroutine
    functions), and is transparent to torch.compile.

    Whatever happens in the probe, the call and its outcome are the target's: when the probe has
    no room to run (a RecursionError as deep as the target's own recursion), the scopes are handed
    to ``unrecorded`` and closed at the next probe point of their thread. The handler calls nothing
    but ``list.append``, which needs no frame (on Python 3.11 even ``threading.get_ident()`` raises
    RecursionError at the limit): each scope knows its thread.
    """
    import inspect

    enter = hook.enter
    leave = hook.leave
    hook_id = id(hook)
    unrecorded = hook.runtime.unrecorded

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if _is_compiling is not _not_compiling and _is_compiling():
                _traced_by_dynamo(hook_id)
                return await fn(*args, **kwargs)
            try:
                scopes = enter()
            except Exception:
                scopes = []
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                try:
                    leave(scopes, exc)
                except Exception:
                    unrecorded.append((scopes, exc))
                raise
            try:
                leave(scopes, None)
            except Exception:
                unrecorded.append((scopes, None))
            return result

        return _keep_attributes(async_wrapper, fn)

    runtime = hook.runtime
    enter_one = runtime.enter_site
    exit_one = runtime.exit
    sites = hook.sites  # grows in place when another target names the same function

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # (Without torch there is nothing to ask: no call.)
        if _is_compiling is not _not_compiling and _is_compiling():
            _traced_by_dynamo(hook_id)
            return fn(*args, **kwargs)
        if len(sites) == 1:
            # One target (the usual case): its scope without building and walking a list.
            if traced_hooks:
                report_traced(runtime)
            try:
                scope = enter_one(sites[0])
            except Exception:
                scope = None
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                try:
                    exit_one(scope, exc)
                except Exception:
                    unrecorded.append(([scope], exc))
                raise
            try:
                exit_one(scope, None)
            except Exception:
                unrecorded.append(([scope], None))
            return result
        try:
            scopes = enter()
        except Exception:
            scopes = []
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            try:
                leave(scopes, exc)
            except Exception:
                unrecorded.append((scopes, exc))
            raise
        try:
            leave(scopes, None)
        except Exception:
            unrecorded.append((scopes, None))
        return result

    return _keep_attributes(wrapper, fn)


def _keep_attributes(wrapper: Any, fn: Any) -> Any:
    """functools.wraps copies a function's ``__dict__``; a callable object (``functools.lru_cache``'s
    wrapper, a partial) keeps its API in its type, so its public attributes are copied too
    (``cache_info``, ``cache_clear``, ...)."""
    if isinstance(fn, types.FunctionType):
        return wrapper
    try:
        names = dir(fn)
    except Exception:
        return wrapper
    for name in names:
        if name.startswith("__") or hasattr(wrapper, name):
            continue
        try:
            setattr(wrapper, name, getattr(fn, name))
        except Exception:
            pass
    return wrapper


def _location(fn: Any) -> Tuple[Optional[str], Optional[int], Optional[int]]:
    import inspect

    try:
        inner = inspect.unwrap(fn)
    except ValueError:
        inner = fn
    code = getattr(inner, "__code__", None)
    if code is None:
        return None, None, None
    return os.path.abspath(code.co_filename), code.co_firstlineno, last_line(code)


class FunctionHooks:
    """Resolves function targets and keeps them patched."""

    def __init__(self, runtime: Any, watcher: ImportWatcher) -> None:
        self._runtime = runtime
        self._watcher = watcher
        # id(function) -> its hook: a function reached under another name is not wrapped again.
        self._hooks: Dict[int, Hook] = {}

    def add(self, target: FunctionTarget) -> None:
        self._watcher.watch(target.module, lambda module, t=target: self._resolve(t, module))

    def _resolve(self, target: FunctionTarget, module: types.ModuleType) -> None:
        # Runs inside the target's own import: nothing may escape from here into it.
        try:
            with self._runtime.quiet():
                try:
                    fields = self._patch(target, module)
                except NotProbeable as exc:
                    self._runtime.report_not_found(target, str(exc), at_once=True)
                    return
                except Exception as exc:
                    self._runtime.report_not_found(
                        target, f"{target.spec} could not be patched: {type(exc).__name__}: {exc}", at_once=True
                    )
                    return
                self._runtime.report_resolved(target, **fields)
        except Exception as exc:
            self._runtime.internal_error(f"resolving {target.spec}", exc)

    @staticmethod
    def _fields(target: FunctionTarget, hook: Hook, aliases: List[str]) -> Dict[str, Any]:
        return {
            "module": target.module,
            "qualname": target.qualname,
            "file": hook.file,
            "line": hook.line,
            "end_line": hook.end_line,
            "aliases": aliases,
        }

    def _patch(self, target: FunctionTarget, module: types.ModuleType) -> Dict[str, Any]:
        parts = target.qualname.split(".")
        owner: Any = module
        for index, part in enumerate(parts[:-1]):
            try:
                owner = getattr(owner, part)
            except AttributeError:
                raise NotProbeable(f"module {target.module} has no attribute {'.'.join(parts[: index + 1])}") from None
        name = parts[-1]
        if isinstance(owner, type):
            # The descriptor itself (staticmethod/classmethod), from the class or the base that
            # defines it; patched onto the named class so calls through it are probed.
            defining = next((klass for klass in owner.__mro__ if name in klass.__dict__), None)
            if defining is None:
                raise NotProbeable(f"module {target.module} has no attribute {target.qualname}")
            raw = defining.__dict__[name]
        elif hasattr(owner, name):
            raw = getattr(owner, name)
        else:
            raise NotProbeable(f"module {target.module} has no attribute {target.qualname}")

        rewrap: Callable[[Any], Any]
        if isinstance(raw, staticmethod):
            fn, rewrap = raw.__func__, staticmethod
        elif isinstance(raw, classmethod):
            fn, rewrap = raw.__func__, classmethod
        elif isinstance(raw, property):
            raise NotProbeable(f"{target.spec} is a property; probe its getter's function instead")
        elif isinstance(raw, type):
            raise NotProbeable(f"{target.spec} is a class; probe {target.qualname}.__init__ or a method")
        elif callable(raw):
            fn, rewrap = raw, (lambda w: w)
        else:
            raise NotProbeable(f"{target.spec} is a {type(raw).__name__}, not a function")

        existing = getattr(fn, "__memlens_hook__", None) if isinstance(fn, types.FunctionType) else None
        if isinstance(existing, Hook) and existing.wrapper is fn:
            # Already our wrapper (another target named the same function): one more scope per call.
            existing.add(target)
            if defining_differs(owner, name, raw):
                _set(owner, name, raw, target)
            return self._fields(target, existing, [])

        hook = self._hooks.get(id(fn))
        if hook is None or hook.fn is not fn:
            hook = Hook(fn, self._runtime)
            wrapper = make_wrapper(fn, hook)
            wrapper.__memlens_hook__ = hook  # type: ignore[attr-defined]
            wrapper.__memlens_original__ = fn  # type: ignore[attr-defined]
            hook.wrapper = wrapper
            self._hooks[id(fn)] = hook
        hook.add(target)
        _set(owner, name, rewrap(hook.wrapper), target)
        aliases = (
            self._patch_aliases(fn, hook.wrapper, module, self._watcher.modules_before_import())
            if not isinstance(owner, type)
            else []
        )
        return self._fields(target, hook, aliases)

    @staticmethod
    def _patch_aliases(fn: Any, wrapper: Any, home: types.ModuleType, existing: Optional[Set[str]]) -> List[str]:
        """Rebind other modules' copies of the same function object (``from x import f``, also
        ``as g``), found by identity.

        Searching every module's namespace costs ~20 ms in a process of vLLM's size (6,000
        modules), and each module-level target resolved during vLLM's start-up paid it. Where the
        function was defined by the very import that resolves the target (the modules not in
        ``existing`` came with that import), no module could have bound it before: only those
        modules are searched whole, and the modules that existed already, which could bind it only
        by running code during that import, are looked up under its own name. A function defined
        earlier (a re-export, or a module imported before the probe watched it) is searched for
        everywhere.
        """
        aliases: List[str] = []
        fn_name = getattr(fn, "__name__", None)
        fn_module = getattr(fn, "__module__", None)
        defined_now = (
            existing is not None
            and isinstance(fn_name, str)
            and (
                fn_module == getattr(home, "__name__", None) or (fn_module in sys.modules and fn_module not in existing)
            )
        )
        for module_name, module in list(sys.modules.items()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            try:
                if defined_now and module_name in existing:  # type: ignore[operator]
                    if namespace.get(fn_name) is not fn:
                        continue
                elif not _holds(namespace, fn):
                    continue
                # The probe's own references (its clocks) stay unprobed: probing them would recurse.
                if module is home or module_name.split(".", 1)[0] == __package__:
                    continue
                names = [key for key, value in list(namespace.items()) if value is fn]
            except Exception:
                continue
            for key in names:
                try:
                    setattr(module, key, wrapper)
                    aliases.append(f"{module_name}:{key}")
                except Exception:
                    pass
        return sorted(aliases)


def _holds(namespace: Dict[str, Any], fn: Any) -> bool:
    """Whether ``fn`` is one of the namespace's values: one pass in C, by identity (no ``__eq__``
    of the target's objects runs), without copying the namespace."""
    try:
        return any(map(_is, namespace.values(), _repeat(fn)))
    except RuntimeError:  # changed by another thread meanwhile (a build without the GIL): a copy
        return any(map(_is, list(namespace.values()), _repeat(fn)))


def defining_differs(owner: Any, name: str, raw: Any) -> bool:
    """True when ``raw`` came from a base class: the named class needs its own binding."""
    return isinstance(owner, type) and owner.__dict__.get(name) is not raw


def _set(owner: Any, name: str, value: Any, target: FunctionTarget) -> None:
    try:
        setattr(owner, name, value)
    except (AttributeError, TypeError) as exc:
        raise NotProbeable(f"{target.spec} cannot be replaced: {exc}") from None


# ----- line probes --------------------------------------------------------------------------


class _LineTargets:
    """Line targets grouped by real file path, and per-code-object lookups."""

    def __init__(self, targets: Iterable[LineTarget]) -> None:
        self.by_file: Dict[str, List[LineTarget]] = {}
        for target in targets:
            self.by_file.setdefault(os.path.realpath(target.file), []).append(target)
        self._real: Dict[str, Optional[str]] = {}

    def file_of(self, filename: str) -> Optional[str]:
        real = self._real.get(filename, "")
        if real == "":
            resolved = os.path.realpath(filename) if filename and not filename.startswith("<") else None
            real = resolved if resolved in self.by_file else None
            self._real[filename] = real
        return real

    def targets_in(self, code: types.CodeType) -> Dict[int, List[LineTarget]]:
        """Line -> the targets on it (several targets may name one line: each gets its scope)."""
        real = self.file_of(code.co_filename)
        if real is None:
            return {}
        lines = code_lines(code)
        found: Dict[int, List[LineTarget]] = {}
        for target in self.by_file[real]:
            if target.line in lines:
                found.setdefault(target.line, []).append(target)
        return found


def _open_line_scopes(runtime: Any, targets: List[LineTarget], file: Optional[str], line: int) -> List[Any]:
    return [scope for scope in (runtime.enter(t, file, line) for t in targets) if scope is not None]


def _close_line_scopes(runtime: Any, scopes: Optional[List[Any]], exc: Optional[BaseException]) -> None:
    for scope in reversed(scopes or ()):
        runtime.exit(scope, exc)


def _module_for_file(real_path: str) -> Optional[str]:
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str):
            try:
                if os.path.realpath(file) == real_path:
                    return name
            except (OSError, ValueError):
                continue
    return None


class MonitoringLines:
    """Python 3.12+: LINE events only on code objects that contain a target line."""

    def __init__(self, runtime: Any, targets: Iterable[LineTarget]) -> None:
        self._runtime = runtime
        self._targets = _LineTargets(targets)
        self._code_targets: Dict[types.CodeType, Dict[int, List[LineTarget]]] = {}
        self._open: Dict[int, List[Any]] = {}
        monitoring = sys.monitoring  # type: ignore[attr-defined]
        self._m = monitoring
        self._tool = self._free_tool_id()
        events = monitoring.events
        monitoring.use_tool_id(self._tool, "memlens")
        monitoring.register_callback(self._tool, events.PY_START, self._on_start)
        monitoring.register_callback(self._tool, events.LINE, self._on_line)
        monitoring.register_callback(self._tool, events.PY_RETURN, self._on_return)
        monitoring.register_callback(self._tool, events.PY_YIELD, self._on_return)
        monitoring.register_callback(self._tool, events.PY_UNWIND, self._on_unwind)
        monitoring.set_events(self._tool, events.PY_START | events.PY_UNWIND)

    @staticmethod
    def _free_tool_id() -> int:
        monitoring = sys.monitoring  # type: ignore[attr-defined]
        for tool in (4, 3, 0, 1, 2, 5):
            if monitoring.get_tool(tool) is None:
                return tool
        raise RuntimeError("all sys.monitoring tool ids are taken")

    def _on_start(self, code: types.CodeType, _offset: int) -> Any:
        found = self._targets.targets_in(code)
        if found:
            self._code_targets[code] = found
            events = self._m.events
            self._m.set_local_events(self._tool, code, events.LINE | events.PY_RETURN | events.PY_YIELD)
            real = self._targets.file_of(code.co_filename)
            for targets in found.values():
                for target in targets:
                    self._runtime.report_resolved(
                        target, module=_module_for_file(real) if real else None, file=real, line=target.line
                    )
        return self._m.DISABLE

    def _on_line(self, code: types.CodeType, line: int) -> Any:
        frame_key = id(sys._getframe(1))
        _close_line_scopes(self._runtime, self._open.pop(frame_key, None), None)
        targets = self._code_targets.get(code, {}).get(line)
        if targets:
            opened = _open_line_scopes(self._runtime, targets, self._targets.file_of(code.co_filename), line)
            if opened:
                self._open[frame_key] = opened
        return None

    def _on_return(self, code: types.CodeType, _offset: int, _value: Any) -> Any:
        _close_line_scopes(self._runtime, self._open.pop(id(sys._getframe(1)), None), None)
        return None

    def _on_unwind(self, code: types.CodeType, _offset: int, exc: BaseException) -> Any:
        if code in self._code_targets:
            _close_line_scopes(self._runtime, self._open.pop(id(sys._getframe(1)), None), exc)
        return None


class TraceLines:
    """Python < 3.12: a global tracer that returns a local tracer only for frames of target files."""

    def __init__(self, runtime: Any, targets: Iterable[LineTarget]) -> None:
        self._runtime = runtime
        self._targets = _LineTargets(targets)
        self._code_targets: Dict[types.CodeType, Optional[Dict[int, List[LineTarget]]]] = {}
        self._open: Dict[int, List[Any]] = {}
        self._pending_exc: Dict[int, BaseException] = {}
        if sys.gettrace() is not None:
            raise RuntimeError(f"line probes need sys.settrace, which {sys.gettrace()!r} already uses")
        sys.settrace(self._global)
        threading.settrace(self._global)

    def _global(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        found = self._code_targets.get(code, False)
        if found is False:
            found = self._targets.targets_in(code) or None
            self._code_targets[code] = found
            if found:
                real = self._targets.file_of(code.co_filename)
                for targets in found.values():
                    for target in targets:
                        self._runtime.report_resolved(
                            target, module=_module_for_file(real) if real else None, file=real, line=target.line
                        )
        if not found:
            return None
        return self._local

    def _local(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        key = id(frame)
        if event == "line":
            self._pending_exc.pop(key, None)
            _close_line_scopes(self._runtime, self._open.pop(key, None), None)
            found = self._code_targets.get(frame.f_code)
            targets = found.get(frame.f_lineno) if found else None
            if targets:
                file = self._targets.file_of(frame.f_code.co_filename)
                opened = _open_line_scopes(self._runtime, targets, file, frame.f_lineno)
                if opened:
                    self._open[key] = opened
        elif event == "exception":
            self._pending_exc[key] = arg[1]
        elif event == "return":
            exc = self._pending_exc.pop(key, None) if arg is None else None
            self._pending_exc.pop(key, None)
            _close_line_scopes(self._runtime, self._open.pop(key, None), exc)
        return self._local


def install_line_probes(runtime: Any, targets: List[LineTarget]) -> Any:
    if not targets:
        return None
    if sys.version_info >= (3, 12):
        return MonitoringLines(runtime, targets)
    return TraceLines(runtime, targets)
