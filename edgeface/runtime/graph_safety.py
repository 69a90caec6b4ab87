"""A SavedModel's graph is checked before TensorFlow loads it: no op that reads or writes files, prints to a
stream, talks to the network, runs Python or dumps tensors may appear (issue 29: no model file of any format can
make edgeface call what it names). A SavedModel is a program - `tf.io.write_file` in a signature runs on every
call - so its ops are read from saved_model.pb (the protobuf, nothing executed) and refused by name. The one
allowance: the checkpoint functions the SavedModel's own saver calls may hold the checkpoint ops they need."""
from __future__ import annotations

import re
from pathlib import Path

from edgeface.errors import EdgefaceError

# ops with an effect outside the tensors; file, summary, reader, dataset, RPC, Python and debug families by pattern
DENIED = frozenset({"WriteFile", "ReadFile", "MatchingFiles", "ImmutableConst", "InitializeTableFromTextFile",
                    "InitializeTableFromTextFileV2", "LoadAndRemapMatrix", "DecodeProtoV2", "Print", "PrintV2",
                    "Copy", "CopyHost", "SaveV2", "Save", "SaveSlices", "RestoreV2", "Restore", "RestoreSlice",
                    "MergeV2Checkpoints", "ShardedFilename", "FileSystemSetConfiguration"})
DENIED_PATTERN = re.compile(r"PyFunc|Summary|Reader|Rpc|^Debug|File|Dataset|Checkpoint|^_(Send|Recv)|Snapshot")
CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "ShardedFilename"})


def _called(node) -> list[str]:
    """Names of the functions a node calls (its `f` attribute, branches, bodies, lists of functions)."""
    names = []
    for value in node.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        names += [f.name for f in value.list.func]
    return names


def saved_model_problem(path) -> str | None:
    """Why the SavedModel folder must not be loaded, or None."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = Path(path) / "saved_model.pb"
    if not pb.is_file():
        return "no saved_model.pb"
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(pb.read_bytes())
    except Exception as err:  # protobuf's DecodeError and friends
        return f"saved_model.pb is not a SavedModel ({type(err).__name__})"
    for graph in saved.meta_graphs:
        functions = {f.signature.name: f for f in graph.graph_def.library.function}
        saver = {graph.saver_def.save_tensor_name.split(":")[0], graph.saver_def.restore_op_name.split(":")[0]} - {""}
        checkpoint_fns, todo = set(), [n for node in graph.graph_def.node if node.name in saver for n in _called(node)]
        while todo:  # the saver's functions and everything they call
            name = todo.pop()
            if name in functions and name not in checkpoint_fns:
                checkpoint_fns.add(name)
                todo += [n for node in functions[name].node_def for n in _called(node)]
        places = [("the graph", graph.graph_def.node, frozenset())]
        places += [(f"function {name}", f.node_def, CHECKPOINT_OPS if name in checkpoint_fns else frozenset())
                   for name, f in functions.items()]
        for where, nodes, allowed in places:
            for node in nodes:
                if node.op not in allowed and (node.op in DENIED or DENIED_PATTERN.search(node.op)):
                    return (f"its graph uses the op {node.op} ({where}, node {node.name}), which acts outside the "
                            "model's tensors (files, printing, Python, network); edgeface does not load it")
    return None


def check_saved_model(path) -> None:
    problem = saved_model_problem(path)
    if problem:
        raise EdgefaceError(f"{path}: {problem}")
