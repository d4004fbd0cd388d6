// OpenSSL libcrypto: the EVP digest interface, for SHA-256 (Sources/Datasets/SHA256.swift).
#include <openssl/evp.h>
