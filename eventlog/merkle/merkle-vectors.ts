/**
 * Spec support: published RFC 6962 / RFC 9162 test vectors, data only (inputs and expected
 * outputs), each with where it was copied from. Not part of the barrel.
 */

/** transparency-dev/merkle rfc6962/rfc6962_test.go (TestRFC6962Hasher), commit 417fb0c314750d94e53942e9f92e79b6d35915db. */
export const HASHER_VECTORS = {
  emptyRoot: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  /** HashLeaf of the empty leaf (differs from the empty root). */
  emptyLeaf: '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  /** HashLeaf("L123456"). */
  leafL123456: '395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56',
  /** HashChildren("N123", "N456") (inputs are not 32 bytes: hashed as given). */
  nodeN123N456: 'aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb',
} as const;

/**
 * The reference 8-leaf tree used across RFC 6962 implementations (Trillian, certificate-transparency-go,
 * transparency-dev/merkle): transparency-dev/merkle testonly/constants.go (LeafInputs, NodeHashes,
 * RootHashes, CompactTrees), commit 417fb0c314750d94e53942e9f92e79b6d35915db.
 */
export const LEAF_INPUTS_HEX = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'] as const;

/** NODE_HASHES[level][index]: every complete subtree of the 8-leaf tree. */
export const NODE_HASHES = [
  [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
    '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
    'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
    '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
  ],
  [
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
  ],
  ['d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'],
  ['5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'],
] as const;

/** ROOT_HASHES[size]: MTH of the first `size` leaves, size 0 … 8. */
export const ROOT_HASHES = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
] as const;

/** COMPACT_RANGES[size]: the right edge of the tree of `size` leaves as [level, index] into NODE_HASHES (CompactTrees). */
export const COMPACT_RANGES: readonly (readonly (readonly [number, number])[])[] = [
  [],
  [[0, 0]],
  [[1, 0]],
  [[1, 0], [0, 2]],
  [[2, 0]],
  [[2, 0], [0, 4]],
  [[2, 0], [1, 2]],
  [[2, 0], [1, 2], [0, 6]],
  [[3, 0]],
];

/**
 * Accumulated vectors of the "Subtree Test Vectors" appendix of draft-ietf-plants-merkle-tree-certs,
 * as transparency-dev/merkle testonly/vectors_test.go checks them, commit 417fb0c314750d94e53942e9f92e79b6d35915db.
 * Tree D of 130 leaves d[i] = the single byte i. Over end = 0 … 130 and start = 0 … end, for each
 * valid subtree [start, end) (start = 0, start = end, or start a multiple of the smallest power of
 * two ≥ end − start):
 *   subtreeHashes: SHA-256 over the lines "[start, end) <hex of MTH(D[start:end])>\n";
 *   subtreeInclusionProofs: for each index in [start, end), the line "index [start, end)" followed by
 *   " <hex>" for each hash of PATH(index − start, D[start:end]), then "\n".
 */
export const SUBTREE_VECTORS = {
  leaves: 130,
  subtreeHashes: 'b82806ad4265bb151c1119c0f4db437bb4d1a1f887b3a7fba1cd4ebf552e3e81',
  subtreeInclusionProofs: 'ac2a8f989e44d99e399db448050ff5f19757df53cfb716aa81015d3955d8163f',
} as const;

/**
 * A real Certificate Transparency log (Google Argon 2020): responses to get-sth, get-entries
 * (entry 10000), get-proof-by-hash and get-sth-consistency?first=3654490, from golang/mod
 * sumdb/tlog/testdata/argon2020/*.json and sumdb/tlog/ct_test.go (the first root), commit
 * b5136e5ba156da612a1efc6e49b55988a134a5e0.
 */
export const ARGON2020 = {
  treeSize: 961984013,
  root: 'dwlueapdd7LaOEnX2W2Wp9v2XE+KzejHRQGHwEx0oaM=',
  leafIndex: 10000,
  leafInput:
    'AAAAAAFelPhqUwAAAAViMIIFXjCCBEagAwIBAgIRAOodHzZdqWIFzYyl/SovhCMwDQYJKoZIhvcNAQELBQAwgZAxCzAJBgNVBAYTAkdCMRswGQYDVQQIExJHcmVhdGVyIE1hbmNoZXN0ZXIxEDAOBgNVBAcTB1NhbGZvcmQxGjAYBgNVBAoTEUNPTU9ETyBDQSBMaW1pdGVkMTYwNAYDVQQDEy1DT01PRE8gUlNBIERvbWFpbiBWYWxpZGF0aW9uIFNlY3VyZSBTZXJ2ZXIgQ0EwHhcNMTcwMjE1MDAwMDAwWhcNMjAwNDE2MjM1OTU5WjBfMSEwHwYDVQQLExhEb21haW4gQ29udHJvbCBWYWxpZGF0ZWQxHTAbBgNVBAsTFFBvc2l0aXZlU1NMIFdpbGRjYXJkMRswGQYDVQQDDBIqLmxhbmRsb3Jkcy5jb20uYXUwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQCtPBKKHj4zdrGlCjgTHzb5gx9JCs97DwvBz60f14gDufF2haWbOxyJ0a3opAMsZnOr8HkARVCwxdqG/PTfACcb0QM7FOlzvxGqxataTYiChwvkkif8F9GlJw69HuHgzhusPf1Ytfk3ps1PRC14MkyrS4kwPrk/Le4XdkqRpRw62wG4V6IkbzsNMEOl1H8EgUbfyapdOcVxHjIzvBVy56fBRKG05Fr5wNq3Acak5kYZdNsLhhmlrqAfAjiombW3hb3V5blJdRC0BDdYHv2+zKey6LqJ1FDoXo6IzbzPpC+aifZy47YX+/N1U64Qn5xlDg7mOP8JXfkNJHbU1TJZHif5AgMBAAGjggHhMIIB3TAfBgNVHSMEGDAWgBSQr2o6lFoL2JDqElZz30O0Oija5zAdBgNVHQ4EFgQUNQSLjkoz01I+iuuoC5lgEp0anhcwDgYDVR0PAQH/BAQDAgWgMAwGA1UdEwEB/wQCMAAwHQYDVR0lBBYwFAYIKwYBBQUHAwEGCCsGAQUFBwMCME8GA1UdIARIMEYwOgYLKwYBBAGyMQECAgcwKzApBggrBgEFBQcCARYdaHR0cHM6Ly9zZWN1cmUuY29tb2RvLmNvbS9DUFMwCAYGZ4EMAQIBMFQGA1UdHwRNMEswSaBHoEWGQ2h0dHA6Ly9jcmwuY29tb2RvY2EuY29tL0NPTU9ET1JTQURvbWFpblZhbGlkYXRpb25TZWN1cmVTZXJ2ZXJDQS5jcmwwgYUGCCsGAQUFBwEBBHkwdzBPBggrBgEFBQcwAoZDaHR0cDovL2NydC5jb21vZG9jYS5jb20vQ09NT0RPUlNBRG9tYWluVmFsaWRhdGlvblNlY3VyZVNlcnZlckNBLmNydDAkBggrBgEFBQcwAYYYaHR0cDovL29jc3AuY29tb2RvY2EuY29tMC8GA1UdEQQoMCaCEioubGFuZGxvcmRzLmNvbS5hdYIQbGFuZGxvcmRzLmNvbS5hdTANBgkqhkiG9w0BAQsFAAOCAQEACyHqxUzrexToY7tOv4+kyGPP2D27P1tQpyzeAl1bPObiMhNK2b9vvBLDWAaqm8c0YL1h+DBdLoWzf3xFsIkTCVCjWJTNSNlcYtgRk6or1s7jWsfXzWqsnPjPPmTIOCw7EfH7Yme3oxPs3UUsmShAgPwNohAtL9GqlqMiKM6v1WU3NHt01jEoNP23LRa6KeNK6AH6WHJykzL223IlhgXjHTeuQj6lR+TNrQXJuhwTXYe+20rrpPQxc1Pn7AqnvfWgmicRQ7gdIcr4V6+ecTvLfNOaJ0ZYe5G5giuAAdTm7F57pk04f4gyZNYKrj88mvbkoriN8b6jcWExtrYO6bm2TwAA',
  auditPath: [
    'T46AmJsuOM/gFiGlUp+IJJebp+1Z5qratFNW7U0JyOQ=', '9Jj1Feodn42uRYEfffkV4HF/EIPFQ5Zo9IwkxbQ2uhk=', 'D53/1oCNebF4J59HHgioovKZxrmrKcVuCVhy3Izg8Ck=',
    'wSFDgGSrsXRPA+1c8WHoAFCsWeUv8NDyP/Q/SgsyVyY=', '516/RcwsgdwdzHn18v1dJHqBkgFUbNhmCIWOGjsMJaE=', 'naTFY2ajLFgrgs5XUl+zJYZnnlJksLGsA1VYwpLfqbY=',
    'mKBRJo6qao+0Kdh/rhGkZUbHUAxMhrtrclrTpIbNjIg=', 'Co4ueOFE7lpifLio94irxxsv1wFMMaK3tPu2ZQkHlro=', 'yRgy800K6JMYCC05sWfqF2kvCg2riT/pVM+nEa6V5+0=',
    'n2O38XJZC8/Wpbwi9HhgVizlUyeUHVZvYyQB1607MRc=', 'go3tAjuNfNSCj87y2Rg1xOroDknGN1eaf3cgvzObf7Q=', '8D0Mj3/J7ySSnFb0afIHYXv6rlOhECnsebY6XKi1IR8=',
    '6rcez46ZU8M5vPiWVMAUfJfAOV0pPP/mch/lYzZhj/M=', '2rtIeXrPvSdUyHc5maIgSAVB2BzaKaupWxSAiVayDE4=', 'nniW/IMFQPN5xw8UsHFn7CRStYbm1gLu7NNa6kkRqJQ=',
    'mRPPi7sQS22MduIEyvcNzCNFqIt6kLwYPkNKrVtIcu8=', 'JvTivzESNS9wHI8aph5a7uieVmtS/p9PciMZ5D6GyOo=', 'UTyQd+Ym0wY4zG+qK806bBORwi1CSVvFQ/KknnqoZj8=',
    'hXODrqN+ff+U6zPqRQ+ZQKs6im1fPcxIerDSfNwflhE=', 'II6GE+WY/DrpZzfHztLwkR46o37zVkNLCyPYlf68zA0=', 'd609kWWcNBllbA8Jb/ad4XAVVGnScLRmtP8FYyr+Dck=',
    'rikBsP0G0gioXRpBFED2CzQdSLrGPvRd0bEcbEZw1rI=', 'GXIElfmnRuWfbA4z7ubV/UwlpSRUbUeec7oL5HDDnh0=', 'pR0SH/NYP6s9+8azWwaeUXA4Ze/3WCIgMfh5YW6wvcE=',
    'f3GuAKYVrF8RBg3s15jvA/YvV9oAliWtzP/imwPhQVA=', 'WHn8zDxlVgkV+lSlmzaOdfSBrTHoRr5nT3d76q0KKWE=', 'f2uV2ZxVgULzLPKuZcowRY3ZY7fRlX59iDBjV1R8kNQ=',
    'NzQVjJsvQwbi7WStMr9oFkh9VbHfK7LB6o7WwAqwNTs=', 'C0LttBeYHZHgL+032JIcJC3CTBIyza/hsbmJUgJfmDI=', 'nixU5CWTFVDlF4BGdcU6kA7WSYurEpe9jRWc+F/7sOc=',
  ],
  firstSize: 3654490,
  firstRoot: 'AuIZ5V6sDUj1vn3Y1K85oOaQ7y+FJJKtyRTl1edIKBQ=',
  consistency: [
    '80Sfbj6UQEdVSZCSIgh9NMPj3vCBzcc1A48B2crJSWg=', 'FZcrgAHUk6nNPviJZq8kEK6jCG1d18pJOFE45ZDc1TQ=', 'Q67reWXmPBo1UfmwBap4Xi9PMPfFdUSSw3WGlRZdG7k=',
    'eJ7CyhR4PxzBxDIsWgrVYW1eFUb9ndgf46tFmiqVrxA=', 'QrDwp062Grm5WY8KdrhFsBuuNjGzRox2Jb8PmVL5OYw=', 'XM4YMjMEdLH/XJam/ZWyaP14k3cmsOtnPsOWQ54lW1s=',
    'SGiBh+jOTGccXU48ZzgQ88lRcBmtB4wz4oSDndv2QTg=', 'WAS6txqNLYKGL1GdBdpqmV42TTfn6cJsuDsqLXuTCNI=', 'QFmRS0rirUA7ZN3lxFjDncV+E1OCrn3NUB4RCp+5fzc=',
    'Hdbp7It2XBNZmNDBpCN/KPd7vfVqxgzwOosqVIaEA9E=', 'mxvHL0ZiblBdD7j7pIa1jlfB0gSqfJ6oX0UGo7L0VsU=', 'q5hjyvoW6TL/PThgcitpDcSTrnKX2p1+aqscqH2euRA=',
    'jTOWDqt3IHj2NVFeezyBz2ofpru+ztEywqKUAfFclKI=', 'GIRn0w3HqJdvU9j1WVD//eR6lk2AaTVjyzjsJNP8U88=', 'x52GJvxG81fnQBrgOTbll1A5tz95/LXK0Ag1NhB0r1I=',
    '6/0OqrcTgc3o5dD5PymmoC96lB9yLPFuTHVvLy8fSGk=', 'Gf+iKLfcXO5l4JEFmsZvSdG5q1uEeWPfYLrds6pmjz0=', 'DGuaco+McyM3AfRSF6qX7RwSetwe2ieYJmxw5e9rVx0=',
    '2tQJ9V32hnYp+fdpP6TcjmgJmLeNVOMKM0Ml1kk4cNU=', '3PapK+IkyJr8I9yAErAmzuZezzLMzsg+PfeRCgNW8NQ=', 's6xiYeejb+wtqHA+URJZ2I/SCPyIW8coP6aB00FJbMY=',
    'z9lSpmdTcr5M5ZzKlc4EPh3SrSypKFdk6JUF/UccaZU=', 'GXIElfmnRuWfbA4z7ubV/UwlpSRUbUeec7oL5HDDnh0=', 'pR0SH/NYP6s9+8azWwaeUXA4Ze/3WCIgMfh5YW6wvcE=',
    'f3GuAKYVrF8RBg3s15jvA/YvV9oAliWtzP/imwPhQVA=', 'WHn8zDxlVgkV+lSlmzaOdfSBrTHoRr5nT3d76q0KKWE=', 'f2uV2ZxVgULzLPKuZcowRY3ZY7fRlX59iDBjV1R8kNQ=',
    'NzQVjJsvQwbi7WStMr9oFkh9VbHfK7LB6o7WwAqwNTs=', 'C0LttBeYHZHgL+032JIcJC3CTBIyza/hsbmJUgJfmDI=', 'nixU5CWTFVDlF4BGdcU6kA7WSYurEpe9jRWc+F/7sOc=',
  ],
} as const;
