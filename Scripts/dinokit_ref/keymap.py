"""The one rule for renaming a block parameter between layouts: a table of module prefixes
(`"attn.proj": "attention.o_proj"`) maps a name's rest (`attn.proj.weight`) to the other layout's
(`attention.o_proj.weight`), the suffix after the prefix kept."""


def rename_block_param(rest: str, table: dict, name: str, what: str = "unmapped key") -> str:
    for src, dst in table.items():
        if rest == src or rest.startswith(src + "."):
            return dst + rest[len(src):]
    raise KeyError(f"{what} {name}")
