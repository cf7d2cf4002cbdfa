"""The Merkle tree against the Certificate Transparency reference vectors (RFC 6962 / 9162:
certificate-transparency's merkle_tree_test.cc, also in transparency-dev/merkle), and proofs for
every leaf and every pair of sizes of ragged trees, each checked by the RFC's verifiers."""

import hashlib

import pytest

from audit.merkle import (
    EMPTY_ROOT,
    ChunkedMerkleTree,
    Frontier,
    MerkleTree,
    leaf_hash,
    leaf_of,
    root_of,
    verify_consistency,
    verify_inclusion,
)

INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
          "606162636465666768696a6b6c6d6e6f"]  # fmt: skip
LEAVES = [leaf_hash(bytes.fromhex(data)) for data in INPUTS]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index from 0, tree size, path)
INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip


def _root(size: int) -> bytes:
    return bytes.fromhex(ROOTS[size])


def test_roots_of_every_size_match_the_reference():
    assert _root(0) == EMPTY_ROOT
    tree, frontier = MerkleTree(LEAVES), Frontier()
    for size in range(9):
        assert root_of(LEAVES[:size]) == _root(size)
        assert tree.root(size) == _root(size)
        assert frontier.root() == _root(size)
        assert tree.frontier(size).peaks == frontier.peaks
        if size < 8:
            frontier.add(LEAVES[size])


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proof_vectors(index, size, path):
    proof = MerkleTree(LEAVES).inclusion_proof(index, size)
    assert [node.hex() for node in proof] == path
    assert verify_inclusion(LEAVES[index], index, size, proof, _root(size))
    assert not verify_inclusion(LEAVES[index], index, size, proof, _root(size - 1))
    assert not verify_inclusion(LEAVES[index - 1], index, size, proof, _root(size))


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_consistency_proof_vectors(old, new, path):
    proof = MerkleTree(LEAVES).consistency_proof(old, new)
    assert [node.hex() for node in proof] == path
    assert verify_consistency(old, new, _root(old), _root(new), proof)
    if old != new:
        assert not verify_consistency(old, new, _root(old - 1), _root(new), proof)
        assert not verify_consistency(old, new, _root(old), _root(new - 1), proof)


def test_every_proof_of_ragged_trees_verifies_and_a_changed_leaf_fails():
    leaves = [leaf_hash(bytes([n, n * 7 % 256])) for n in range(37)]
    tree = MerkleTree(leaves)
    roots = [root_of(leaves[:size]) for size in range(38)]
    for size in range(1, 38):
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert verify_inclusion(leaves[index], index, size, proof, roots[size])
            assert not verify_inclusion(leaf_hash(b"forged"), index, size, proof, roots[size])
        for old in range(size + 1):
            proof = tree.consistency_proof(old, size)
            assert verify_consistency(old, size, roots[old], roots[size], proof), (old, size)
    changed = leaves[:]
    changed[10] = leaf_hash(b"edited")
    edited = MerkleTree(changed)
    proof = edited.consistency_proof(20, 37)
    assert not verify_consistency(20, 37, roots[20], edited.root(), proof)


def test_a_frontier_continues_from_stored_hex():
    leaves = [leaf_hash(bytes([n])) for n in range(21)]
    start = MerkleTree(leaves).frontier(13)
    resumed = Frontier.from_hex(13, start.to_hex())
    for leaf in leaves[13:]:
        resumed.add(leaf)
    assert resumed.root() == root_of(leaves)
    with pytest.raises(ValueError):
        Frontier.from_hex(12, start.to_hex())


def test_extending_a_frontier_by_many_leaves_grows_the_tree_add_grows():
    leaves = [leaf_hash(bytes([n])) for n in range(70)]
    for start in range(0, 70, 3):
        for count in range(70 - start):
            one_by_one = Frontier.from_hex(start, MerkleTree(leaves).frontier(start).to_hex())
            at_once = one_by_one.copy()
            for leaf in leaves[start : start + count]:
                one_by_one.add(leaf)
            at_once.extend(leaves[start : start + count])
            assert (at_once.size, at_once.peaks) == (one_by_one.size, one_by_one.peaks)
    whole = Frontier()
    whole.extend(leaves)
    assert whole.root() == root_of(leaves) == MerkleTree(leaves).root()


def test_an_event_leaf_is_its_raw_hash_with_the_leaf_prefix():
    event_hash = "ab" * 32
    assert leaf_of(event_hash) == hashlib.sha256(b"\x00" + bytes.fromhex(event_hash)).digest()


@pytest.mark.parametrize("chunk_bits", [0, 1, 2, 3])
def test_a_chunked_tree_gives_the_same_roots_and_proofs_reading_only_the_chunks_it_needs(
    chunk_bits,
):
    for size in range(1, 41):
        leaves = [leaf_hash(bytes([n])) for n in range(size)]
        whole = MerkleTree(leaves)
        span = 1 << chunk_bits
        chunks = [leaves[i * span : (i + 1) * span] for i in range(size >> chunk_bits)]
        roots = [MerkleTree(chunk).root() for chunk in chunks]
        loaded = []

        def load(chunk, leaves=leaves, span=span, loaded=loaded):
            loaded.append(chunk)
            return leaves[chunk * span : (chunk + 1) * span]

        chunked = ChunkedMerkleTree(size, chunk_bits, roots, load)
        assert chunked.root() == whole.root()
        for index in range(size):
            assert chunked.inclusion_proof(index) == whole.inclusion_proof(index)
        assert len(set(loaded)) <= -(-size // span)
    with pytest.raises(ValueError):
        ChunkedMerkleTree(8, 2, [], lambda chunk: [])
