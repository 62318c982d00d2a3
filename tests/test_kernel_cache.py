"""The compiled kernels' disk cache goes stale with any kernel source of the package, not only
with the kernel's own file (a cascade compiled against an old callee would keep old bits)."""

import importlib
import re
from pathlib import Path

import numba

from asyncneurons.learning import kernel_cache

PACKAGE = Path(kernel_cache.__file__).resolve().parents[1]


def _kernel_modules():
    """The package's modules that compile cached kernels, as dotted names."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name != "kernel_cache.py" and re.search(r"^@\S*njit\([^)]*cache=", path.read_text(), re.M):
            yield "asyncneurons." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)


def test_every_module_with_cached_kernels_imports_the_stamp_first():
    modules = list(_kernel_modules())
    assert "asyncneurons.learning.compiled" in modules and len(modules) >= 5
    for name in modules:
        text = (PACKAGE / Path(*name.split(".")[1:])).with_suffix(".py").read_text()
        assert "kernel_cache" in text, name
        first_kernel = re.search(r"^@\S*njit", text, re.M).start()
        assert text.index("kernel_cache") < first_kernel, f"{name} compiles before it stamps"


def test_every_cached_kernel_of_the_package_is_stamped_with_the_package_digest():
    found = 0
    for name in _kernel_modules():
        for value in vars(importlib.import_module(name)).values():
            if isinstance(value, numba.core.registry.CPUDispatcher) and value._cache._impl is not None:
                locator = value._cache._impl._locator
                assert isinstance(locator, (kernel_cache.PackageKernelLocator,
                                            kernel_cache.PackageKernelUserLocator)), (name, value)
                assert locator.get_source_stamp() == kernel_cache.kernel_sources_digest()
                found += 1
    assert found >= 20


def test_the_digest_changes_with_any_kernel_source_and_only_with_kernel_sources(tmp_path):
    (tmp_path / "engine").mkdir()
    callee = tmp_path / "compiled.py"
    caller = tmp_path / "engine" / "cascade.py"
    plain = tmp_path / "engine" / "plain.py"
    callee.write_text("from numba import njit\n\n@njit(cache=True)\ndef f(x):\n    return x + 1.0\n")
    caller.write_text("from numba import njit\nfrom compiled import f\n\n@njit(cache=True)\ndef g(x):\n"
                      "    return f(x)\n")
    plain.write_text("VALUE = 1\n")
    digest = kernel_cache.kernel_sources_digest.__wrapped__

    before = digest(tmp_path)
    plain.write_text("VALUE = 2\n")
    assert digest(tmp_path) == before  # a module without kernels does not invalidate the cache
    callee.write_text(callee.read_text().replace("x + 1.0", "x + 2.0"))
    assert digest(tmp_path) != before  # the callee changed: the caller's cached code is stale too


def test_functions_outside_the_package_keep_numbas_own_locators(tmp_path):
    source = tmp_path / "elsewhere.py"
    source.write_text("def f():\n    return 1\n")
    assert kernel_cache.PackageKernelLocator.from_function(lambda: 1, str(source)) is None
