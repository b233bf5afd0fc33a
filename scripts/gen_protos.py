"""Generate Python code for Durata's internal protos into server/gen/.

Internal protos import Temporal's public protos; we compile against the .proto sources shipped inside the
temporalio wheel and point the generated imports at ``temporalio.api`` so the public message classes are the
very same ones the SDKs use. Generated code is never committed or hand-edited: run this script instead.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "server" / "gen"


def main() -> int:
    import temporalio
    from grpc_tools import protoc

    api_dir = pathlib.Path(temporalio.__file__).parent / "bridge/sdk-core/crates/protos/protos/api_upstream"
    grpc_include = pathlib.Path(protoc.__file__).parent / "_proto"
    if OUT_DIR.exists():
        shutil.rmtree(OUT_DIR)
    OUT_DIR.mkdir(parents=True)
    sources = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{api_dir}",
        f"-I{grpc_include}",
        f"--python_out={OUT_DIR}",
        f"--pyi_out={OUT_DIR}",
        f"--grpc_python_out={OUT_DIR}",
        *sources,
    ]
    if protoc.main(args) != 0:
        print("protoc failed", file=sys.stderr)
        return 1
    for path in OUT_DIR.rglob("*.py*"):
        text = path.read_text()
        text = re.sub(r"\bfrom temporal\.api\b", "from temporalio.api", text)
        text = re.sub(r"\bimport temporal\.api\b", "import temporalio.api", text)
        text = re.sub(r"\bfrom durata\.internal\b", "from server.gen.durata.internal", text)
        path.write_text(text)
    for d in [OUT_DIR, *[p for p in OUT_DIR.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    print(f"generated {len(sources)} proto files into {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
