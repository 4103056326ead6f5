"""No import cycle between any two lightcls modules, imports inside functions counted (import-linter's
layers contract sees only imports between layers)."""

from __future__ import annotations

import grimp


def test_no_two_modules_import_each_other_even_inside_functions() -> None:
    graph = grimp.build_graph("lightcls")
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            related = module.startswith(f"{imported}.") or imported.startswith(f"{module}.")
            if not related and graph.chain_exists(importer=imported, imported=module):
                cycles.add(tuple(sorted((module, imported))))
    assert not cycles, sorted(cycles)
