"""The Merkle tree over the audit chain, in the shape of RFC 9162 (Certificate Transparency 2.0),
section 2.1: leaves hashed with a 0x00 prefix, interior nodes with 0x01, a tree of n leaves split
at the largest power of two below n.

Standard library only and pure functions, like `audit.chain`: the offline verifier imports this
module without Django. Leaf *i* (from 0) of the audit tree is the event with sequence number
*i + 1*, and its leaf data is that event's 32-byte hash; `leaf_of` turns the hex hash into the
leaf hash.

Three tools, each for one job:

- `Frontier`, for walking a chain once: it keeps only the roots of the perfect subtrees that make
  up the tree so far (at most one per bit of the size), takes one leaf at a time and gives the
  root at any moment, in O(1) memory per level and one node hash per leaf on average. A
  checkpoint stores its frontier so that the next one continues from it.
- `MerkleTree`, for building proofs: every level of the tree over n leaves, built in O(n) once;
  then any root over a prefix, inclusion proof or consistency proof costs O(log^2 n) lookups.
- `ChunkedMerkleTree`, the same proofs from stored roots of complete chunks of leaves (an
  evidence pack over a long trail reads a few chunks, not every event hash).
- `verify_inclusion` and `verify_consistency`: the checks of RFC 9162 2.1.3.2 and 2.1.4.2.
"""

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_of(event_hash_hex: str) -> bytes:
    """The leaf hash of an audit event, from its stored hex hash."""
    return leaf_hash(bytes.fromhex(event_hash_hex))


def _split(size: int) -> int:
    """The largest power of two smaller than `size` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _fold(peaks: Sequence[bytes]) -> bytes:
    if not peaks:
        return EMPTY_ROOT
    root = peaks[-1]
    for peak in reversed(peaks[:-1]):
        root = node_hash(peak, root)
    return root


class Frontier:
    """The tree so far, as the roots of its perfect subtrees, largest (leftmost) first."""

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = ()):
        if len(peaks) != size.bit_count():
            raise ValueError(
                f"a tree of {size} leaves has {size.bit_count()} peaks, not {len(peaks)}"
            )
        self.size = size
        self.peaks = list(peaks)

    def add(self, leaf: bytes, sha256=hashlib.sha256) -> None:
        """Append one leaf hash. Each set low bit of the size is a perfect subtree that the new
        leaf completes into one twice as large."""
        size, peaks = self.size, self.peaks
        while size & 1:
            leaf = sha256(b"\x01" + peaks.pop() + leaf).digest()
            size >>= 1
        peaks.append(leaf)
        self.size += 1

    def extend(self, leaves: Sequence[bytes], sha256=hashlib.sha256) -> None:
        """Append many leaf hashes: the same tree as `add` for each, in fewer Python steps. The
        leaves are cut into the perfect subtrees that their positions align to, each hashed
        level by level, and each root then joins the peaks as `add` joins a leaf."""
        start = 0
        while start < len(leaves):
            height = (len(leaves) - start).bit_length() - 1
            if self.size:
                height = min(height, (self.size & -self.size).bit_length() - 1)
            level = leaves[start : start + (1 << height)]
            for _ in range(height):
                level = [
                    sha256(b"\x01" + left + right).digest()
                    for left, right in zip(level[0::2], level[1::2], strict=True)
                ]
            root, size = level[0], self.size >> height
            while size & 1:
                root = sha256(b"\x01" + self.peaks.pop() + root).digest()
                size >>= 1
            self.peaks.append(root)
            self.size += 1 << height
            start += 1 << height

    def root(self) -> bytes:
        return _fold(self.peaks)

    def copy(self) -> "Frontier":
        return Frontier(self.size, self.peaks)

    def to_hex(self) -> list[str]:
        return [peak.hex() for peak in self.peaks]

    @classmethod
    def from_hex(cls, size: int, peaks: Iterable[str]) -> "Frontier":
        values = [bytes.fromhex(peak) for peak in peaks]
        if any(len(value) != HASH_SIZE for value in values):
            raise ValueError("a peak is not a 32-byte hash")
        return cls(size, values)


def root_of(leaves: Iterable[bytes]) -> bytes:
    """MTH over the leaf hashes, in O(n) with O(log n) memory."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.add(leaf)
    return frontier.root()


class MerkleTree:
    """Every level of the tree over `leaves` (leaf hashes), each level one bytes object of
    32-byte nodes: about 64 bytes per leaf in all. A node (level k, index i) is the root of the
    perfect subtree over leaves [i * 2^k, (i + 1) * 2^k), and exists only where those leaves do."""

    def __init__(self, leaves: Iterable[bytes]):
        level = b"".join(leaves)
        if len(level) % HASH_SIZE:
            raise ValueError("leaves must be 32-byte hashes")
        self.size = len(level) // HASH_SIZE
        self.levels = [level]
        sha256 = hashlib.sha256
        while len(level) >= 2 * HASH_SIZE:
            pairs = len(level) // (2 * HASH_SIZE)
            level = b"".join(
                sha256(b"\x01" + level[offset : offset + 2 * HASH_SIZE]).digest()
                for offset in range(0, pairs * 2 * HASH_SIZE, 2 * HASH_SIZE)
            )
            self.levels.append(level)

    def _node(self, level: int, index: int) -> bytes:
        start = index * HASH_SIZE
        return self.levels[level][start : start + HASH_SIZE]

    def _range(self, low: int, high: int) -> bytes:
        """MTH(D[low:high]). In the RFC's recursions `low` is always a multiple of the left
        part's size, so the left part is a stored node and only the right edge recurses."""
        count = high - low
        if count & (count - 1) == 0 and low % count == 0:
            return self._node(count.bit_length() - 1, low // count)
        split = _split(count)
        return node_hash(self._range(low, low + split), self._range(low + split, high))

    def leaf(self, index: int) -> bytes:
        return self._node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """The root of the tree over the first `size` leaves (all by default)."""
        size = self.size if size is None else size
        self._check_size(size)
        return self._range(0, size) if size else EMPTY_ROOT

    def frontier(self, size: int) -> Frontier:
        """The peaks of the tree over the first `size` leaves: what a walk needs to continue."""
        self._check_size(size)
        peaks, start = [], 0
        for bit in reversed(range(size.bit_length())):
            if size >> bit & 1:
                peaks.append(self._node(bit, start >> bit))
                start += 1 << bit
        return Frontier(size, peaks)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 9162 2.1.3.1."""
        size = self.size if size is None else size
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        proof: list[bytes] = []
        low, high = 0, size
        while high - low > 1:
            split = _split(high - low)
            if index < low + split:
                proof.append(self._range(low + split, high))
                high = low + split
            else:
                proof.append(self._range(low, low + split))
                low += split
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[0:new_size]) of RFC 9162 2.1.4.1; empty when either size is 0 or
        both are equal."""
        new_size = self.size if new_size is None else new_size
        self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"no consistency proof from {old_size} to {new_size}")
        if old_size in (0, new_size):
            return []
        proof: list[bytes] = []
        low, high, whole = 0, new_size, True
        while True:
            count, wanted = high - low, old_size - low
            if wanted == count:
                if not whole:
                    proof.append(self._range(low, high))
                break
            split = _split(count)
            if wanted <= split:
                proof.append(self._range(low + split, high))
                high = low + split
            else:
                proof.append(self._range(low, low + split))
                low += split
                whole = False
        proof.reverse()
        return proof

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ValueError(f"the tree holds {self.size} leaves, not {size}")


class ChunkedMerkleTree(MerkleTree):
    """The tree over `size` leaves, from the roots of its complete chunks of 2^`chunk_bits`
    leaves and `load_chunk(i)`, which gives the leaf hashes of chunk i (the last one may be
    partial). A node spanning whole chunks comes from the tree over the chunk roots; a smaller
    one from the leaves of its chunk, loaded once. Proofs and roots are those of `MerkleTree`
    over the same leaves."""

    def __init__(
        self,
        size: int,
        chunk_bits: int,
        chunk_roots: Sequence[bytes],
        load_chunk: Callable[[int], Sequence[bytes]],
    ):
        if len(chunk_roots) != size >> chunk_bits:
            raise ValueError(f"{size} leaves make {size >> chunk_bits} complete chunks")
        self.size = size
        self.chunk_bits = chunk_bits
        self.upper = MerkleTree(chunk_roots)
        self.load_chunk = load_chunk
        self.chunks: dict[int, MerkleTree] = {}

    def _node(self, level: int, index: int) -> bytes:
        if level >= self.chunk_bits:
            return self.upper._node(level - self.chunk_bits, index)
        chunk = (index << level) >> self.chunk_bits
        if chunk not in self.chunks:
            self.chunks[chunk] = MerkleTree(self.load_chunk(chunk))
        return self.chunks[chunk]._node(level, index - (chunk << (self.chunk_bits - level)))


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether `proof` shows `leaf` at `index` in the tree of `size` leaves with `root`."""
    if not 0 <= index < size:
        return False
    position, last, value = index, size - 1, leaf
    for sibling in proof:
        if last == 0:
            return False
        if position & 1 or position == last:
            value = node_hash(sibling, value)
            while not position & 1 and position:
                position >>= 1
                last >>= 1
        else:
            value = node_hash(value, sibling)
        position >>= 1
        last >>= 1
    return last == 0 and value == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree of `old_size` leaves with `old_root` to be the first
    `old_size` leaves of the tree of `new_size` with `new_root`: nothing before was changed,
    removed or reordered."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    position, last = old_size - 1, new_size - 1
    while position & 1:
        position >>= 1
        last >>= 1
    old_value = new_value = path[0]
    for sibling in path[1:]:
        if last == 0:
            return False
        if position & 1 or position == last:
            old_value = node_hash(sibling, old_value)
            new_value = node_hash(sibling, new_value)
            while not position & 1 and position:
                position >>= 1
                last >>= 1
        else:
            new_value = node_hash(new_value, sibling)
        position >>= 1
        last >>= 1
    return last == 0 and old_value == old_root and new_value == new_root
