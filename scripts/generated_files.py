"""What every generator under scripts/ does with its output: write a file only when its text differs, or, with
--check, write nothing and list the files that are out of date (exit status 1).

    import generated_files
    return generated_files.sync({path: text}, args.check, "roles/*/meta/argument_specs.yml",
                                "scripts/gen-vars-doc.py")
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path):
    """The text of ``path``, or None when there is no such file."""
    if not os.path.exists(path):
        return None
    with open(path, "r", encoding="utf-8") as handle:
        return handle.read()


def between_markers(text, begin, end, body, where):
    """``text`` with the lines between the line holding ``begin`` and the line holding ``end`` replaced by ``body``
    (whole lines). ``where`` names the file in the message when a marker is missing."""
    start = text.find(begin)
    stop = text.find(end, start) if start >= 0 else -1
    if start < 0 or stop < 0:
        raise SystemExit("%s has no generated block; add these two lines where it belongs:\n%s\n%s"
                         % (where, begin, end))
    head = text[:text.index("\n", start) + 1]
    return head + body + text[text.rfind("\n", 0, stop) + 1:]


def sync(files, check, source, command, remove=()):
    """Bring ``files`` ({path: wanted text}) up to date and delete the paths in ``remove``; with ``check``, only
    report them. ``source`` is what the files are made from and ``command`` the script that makes them (both for
    the messages). Returns the exit status: 1 when ``check`` found a stale file, else 0."""
    stale = []
    for path, text in sorted(files.items()):
        if read(path) == text:
            continue
        stale.append(os.path.relpath(path, ROOT))
        if not check:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
    for path in sorted(remove):
        stale.append(os.path.relpath(path, ROOT) + " (no longer generated)")
        if not check:
            os.remove(path)
    if check and stale:
        print("Out of date with %s: %s\nRun: .venv/bin/python %s  (then commit the files)"
              % (source, ", ".join(stale), command), file=sys.stderr)
        return 1
    if stale:
        print("rewritten: %s" % ", ".join(stale))
    else:
        print("current: the files made from %s" % source)
    return 0
