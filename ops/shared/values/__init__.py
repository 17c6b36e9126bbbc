"""The kernel's values: errors, money, time, keyset cursors, server lists.

Pure: no I/O, and no import from another layer of the kernel.
"""
