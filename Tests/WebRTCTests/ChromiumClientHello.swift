import Foundation

/// Chromium 156's DTLS ClientHello for WebRTC as it arrived at a camflow
/// spike (1413 bytes: DTLS 1.3 and 1.2, an X25519MLKEM768 key share, use_srtp
/// AES128_CM_SHA1_80 and two AEAD profiles), in its two datagrams of 1200 and
/// 263 bytes: fragments 0+1175 and 1175+238.
enum ChromiumClientHello {
    static let first = datagram("""
        Fv7/AAAAAAAAAAAEowEABYUAAAAAAAAEl/79VUnyKc5vPT+pRCyelOUmtdXhyZeV6rBeib0MS2KIDKAAAAAcEwETAhMDwCvAL8yp
        zKjACcATwArAFACcAC8ANQEABT8ALQACAQEAMwTqBOgR7ATA/POSsZYc2FRJOCYT8wRDKEKfnulJepk/ueuv/XBKo0WRWUujZ4c0
        D/TFC7eVoNqEC4GV2lIhq/Ww9bJTdcRz1xssTVOpi2Qli2uR2ZQCnnJRx0yu6jsNSxUkwykCDnujjbYFwoaUELkidTww3OVWvxeH
        CjxrJ3KEswQduRs9xkHAoVrOclSPrYmnaJbMR4nFSCzHJntmOAGdWvYWMfq1K4m1ZMV+YZYQNUhjzzgroCmbjIOj9KdHjXIFMdQD
        pvIHaglWhLmoFiYSVxdxNWhl/zBvDeZNG4NZ4nwvqTSSKGMdIEw6jANFrEpqFUkXUYms5lFUqqi6zYUtmCnGeAUWuhwdYgqEHhZH
        JaJ5KvtaQxgPaWfKjAjI4UoonZPICwMc4yVA84OETHMfK3BKh2S8B4CBHjdS4GRh54dVjbe7KeZFzsWPb3QFXDRjcdq7WtAu1qC1
        6Dlv/mUHdmAAsfMxXzUsFDqE9qENCANIbVIuY2gXEiczj3es73SzLbl2RnAPu4eV5nqSG3cXZBg089OaVOoZ4xB48ICTobpI5xkm
        WBcMjbpWpOpML1plIaQnmzQntHZGH8BsrydzzkKLqNc4TDMOVvnFlgBjrFN/ZnfG3vVVBqtFVigRNRYeasYheIxieafNS4sKnaYh
        6OAU5XGUkodBPsVDbLGPELhR2DYjcqSfeBZyBJmgFzULl+QS38QOGMYNsoIn4GRu3VsiVhLM7/GcYdowOuJ3+nQGlhxHJ/kbuImf
        LgiHlNwottQkQwKmA5px21NPWNITdYU78DkFeJqCaQV+lIEvd5uUxqFqd0sHg3xULoyq+JmHtpZcrvAzZ+bGL5cTKfgHGIBzLOZw
        ZqYFXJdBg8vGNamuIuNxerOmzzyLgocj4YMBibo072ub9um2qjmYkOcFp5PMNJEwf3eMk0QDM/Uiqnm0ZLW4w4ifZPdwWYBO3eHO
        u5unkbVH3yEtc5IUgdeM5GJ6WmKec6OGR3dr5ZquzEis/UJxPzgzN8pKlcemdwxPhvBhxWmZFld0Qsy2UVKgGbC19QSBeReFjdI8
        HEckTIxNCevH8KON02AY50SWo7yW5CImmLxJRJi9ftuuZOLHnzgdb4GjltZqYtRNdfh8b9pRIABZkyxj7rNGkmkLJ4TLCGXG0uxE
        vuTKthGEDzoYYJiOu3ShvYW0PTkTbqILwfEZvDRI26RIpzCd/yutP2zFVBVKQHaDHUGO+amPCEVaWZpiUohIqPXEV8Z1sUM/HcNy
        TxSv0BB7aFCw6aUNUiVJ2VZpCJOgAAex4fFFvgRayFgN6INb7heC0NK0usGhmsImOplKjzMSSAmez+tJ2TAvZUy2XKC9KKsRbWQ4
        +xGVAbgW5bUKWJi7kpIHHgEmp6UEfuortstBcNiaC0gv+NN9wCbJVnVGwCgPkOybb7u4pBdjI2vF3VZdFeRI38SHmvA2W+KVjQGJ
        """)
    static let second = datagram("""
        Fv7/AAAAAAAAAAEA+gEABYUAAAAElwAA7uT5gEoAg/RhiBRZrh8jyLgqd3hTTO1gOuGzIus5t7zHcbtCNEQWgsxsXVBgBE4kdqjm
        fySYpqFMPlNGQNsZg68abX+swHGv/mpHPk2QMqEZwSkHF4UodrKFf5zmOC5VaPBfXQaGLoObQy9+4iZH+0XvUbGsgzInpISzF6Ey
        vjsAHQAg+BhfcLpkGCNYkwp2BAo1ZQRKvEF6q450tevdudbalW4ACgAKAAgR7AAdABcAGP8BAAEAABcAAAALAAIBAAArAAUE/vz+
        /QAOAAkABgABAAgABwAADQAUABIEAwgEBAEFAwgFBQEIBgYBAgE=
        """)

    private static func datagram(_ base64: String) -> [UInt8] {
        Array(Data(base64Encoded: base64.filter { !$0.isWhitespace })!)
    }
}
