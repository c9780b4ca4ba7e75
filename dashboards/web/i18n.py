"""The UI's words in Bahasa Indonesia (the default) and English, and how a request picks one."""

from __future__ import annotations

from typing import Literal

Language = Literal["id", "en"]
LANGUAGES: tuple[Language, ...] = ("id", "en")
DEFAULT_LANGUAGE: Language = "id"
COOKIE = "siaga_lang"

# key -> (Bahasa Indonesia, English)
STRINGS: dict[str, tuple[str, str]] = {
    "app.title": ("Siaga: pemantauan banjir", "Siaga: flood monitoring"),
    "nav.overview": ("Ikhtisar", "Overview"),
    "nav.incidents": ("Insiden", "Incidents"),
    "nav.login": ("Masuk", "Sign in"),
    "nav.logout": ("Keluar", "Sign out"),
    "nav.language": ("Bahasa", "Language"),
    "live.connected": ("Langsung", "Live"),
    "live.disconnected": ("Terputus, menyambung ulang…", "Disconnected, reconnecting…"),
    "level.NORMAL": ("Normal", "Normal"),
    "level.WASPADA": ("Waspada", "Alert"),
    "level.SIAGA": ("Siaga", "Standby"),
    "level.AWAS": ("Awas", "Danger"),
    "level.unknown": ("Tidak ada data", "No data"),
    "overview.stations": ("Pos pemantauan", "Stations"),
    "overview.active": ("Insiden aktif", "Active incidents"),
    "overview.none_active": ("Tidak ada insiden aktif", "No active incidents"),
    "overview.map": ("Peta pos dan sungai", "Map of stations and rivers"),
    "col.station": ("Pos", "Station"),
    "col.river": ("Sungai", "River"),
    "col.regency": ("Kabupaten/Kota", "Regency"),
    "col.level": ("Tinggi muka air", "Water level"),
    "col.status": ("Status", "Status"),
    "col.trend": ("Laju", "Rate"),
    "col.stale": ("Data terakhir", "Last data"),
    "sort.by": ("Urutkan", "Sort by"),
    "sort.level": ("Tingkat", "Level"),
    "sort.trend": ("Laju naik", "Rise rate"),
    "sort.stale": ("Keusangan", "Staleness"),
    "sort.name": ("Nama", "Name"),
    "age.now": ("baru saja", "just now"),
    "age.s": ("{n} dtk lalu", "{n} s ago"),
    "age.min": ("{n} mnt lalu", "{n} min ago"),
    "age.h": ("{n} jam lalu", "{n} h ago"),
    "age.d": ("{n} hari lalu", "{n} d ago"),
    "stale": ("usang", "stale"),
    "stale.title": ("Data usang: pos ini tidak melapor tepat waktu", "Stale: this station is late"),
    "unit.s": ("{n} detik", "{n} s"),
    "unit.min": ("{n} menit", "{n} min"),
    "unit.h": ("{n} jam", "{n} h"),
    "unit.d": ("{n} hari", "{n} days"),
    "unit.rate": ("{n} cm/jam", "{n} cm/h"),
    "skew.late": ("{d} terlambat", "{d} behind"),
    "skew.ahead": ("{d} lebih cepat", "{d} ahead"),
    "skew.none": ("tepat waktu", "in time"),
    "nav.skip": ("Langsung ke isi", "Skip to content"),
    "overview.as_of": ("Data dibaca {age}", "Data read {age}"),
    "card.reasons": ("Alasan ({n})", "Reasons ({n})"),
    "card.more": ("Lainnya", "More"),
    "card.acked": ("Diakui oleh {by}", "Acknowledged by {by}"),
    "card.ack_comment": ("Akui dengan komentar", "Acknowledge with a comment"),
    "card.ack_regency": ("Akui semua di {regency} ({n} pos)", "Acknowledge all in {regency} ({n})"),
    "card.no_regency": ("Tanpa kabupaten", "No regency"),
    "card.silence_for": ("Bisukan selama", "Silence for"),
    "reason.level": ("Tinggi air {value}", "Water level {value}"),
    "reason.rate": ("Naik cepat: {rate}", "Rising fast: {rate}"),
    "reason.upstream": ("Gelombang dari {name} ({value})", "Wave from {name} ({value})"),
    "reason.arrival": ("perkiraan tiba {at}", "expected about {at}"),
    "reason.forecast": ("Prakiraan: {level}", "Forecast: {level}"),
    "reason.no_data": ("Tidak ada data selama {age}", "No data for {age}"),
    "reason.sensor_fault": ("Sensor bermasalah", "Sensor fault"),
    "reason.since": ("sejak {at}", "since {at}"),
    "station.back": ("← Ikhtisar", "← Overview"),
    "station.range": ("Rentang", "Range"),
    "station.time": ("Waktu", "Time"),
    "station.expected": ("perkiraan tiba", "expected"),
    "station.water": ("Tinggi muka air (cm)", "Water level (cm)"),
    "station.rain": ("Curah hujan (mm)", "Rain (mm)"),
    "station.battery": ("Baterai (V)", "Battery (V)"),
    "station.signal": ("Sinyal (dBm)", "Signal (dBm)"),
    "station.upstream": ("Hulu", "Upstream"),
    "station.downstream": ("Hilir", "Downstream"),
    "station.wave": ("Gelombang dari hulu", "Wave from upstream"),
    "station.arrival": (
        "{name}: {value} cm ({level}) pada {at}; tiba di sini sekitar {arrival} (+{travel})",
        "{name}: {value} cm ({level}) at {at}; expected here about {arrival} (+{travel})",
    ),
    "station.no_upstream": ("Tidak ada pos hulu", "No upstream station"),
    "station.thresholds": ("Batas", "Thresholds"),
    "station.latest": ("Terbaru", "Latest"),
    "station.health": ("Kesehatan perangkat", "Device health"),
    "health.completeness": ("Kelengkapan 24 jam", "Completeness 24 h"),
    "health.battery": ("Baterai", "Battery"),
    "health.signal": ("Sinyal", "Signal"),
    "health.skew": ("Selisih jam", "Clock skew"),
    "health.backdated": (
        "Data terlambat (putar ulang, simulasi atau kiriman tertunda): kelengkapan dan selisih "
        "jam menggambarkan pengiriman itu, bukan kerusakan alat.",
        "Back-dated readings (a replay, a simulation or a delayed backlog): completeness and "
        "clock skew describe that delivery, not a faulty device.",
    ),
    "station.zone": ("Zona waktu", "Time zone"),
    "station.no_data": ("Belum ada data dalam rentang ini", "No data in this range yet"),
    "station.not_found": ("Pos tidak ditemukan", "Station not found"),
    "station.not_found_text": (
        "Tidak ada pos dengan alamat ini. Daftar semua pos ada di ikhtisar.",
        "There is no station at this address. The overview lists every station.",
    ),
    "station.to_newest": (
        "Data terbaru dari {at}: grafik berakhir pada data terbaru.",
        "Newest data from {at}: the chart ends at the newest reading.",
    ),
    "station.active": ("Keadaan sekarang", "Now"),
    "station.history": ("Riwayat insiden dalam rentang ini", "Incidents in this range"),
    "incidents.title": ("Insiden", "Incidents"),
    "incidents.active": ("Aktif", "Active"),
    "incidents.all": ("Semua", "All"),
    "incidents.none": ("Tidak ada insiden", "No incidents"),
    "incidents.state.pending": ("menunggu", "pending"),
    "incidents.state.firing": ("aktif", "firing"),
    "incidents.state.resolved": ("selesai", "resolved"),
    "incidents.acked_by": ("Diakui oleh {by} pada {at}", "Acknowledged by {by} at {at}"),
    "incidents.assigned_to": ("Ditugaskan ke {who}", "Assigned to {who}"),
    "incidents.ack": ("Akui", "Acknowledge"),
    "incidents.comment": ("Komentar", "Comment"),
    "incidents.assign": ("Tugaskan", "Assign"),
    "incidents.assignee": ("Petugas", "Assignee"),
    "incidents.silence": ("Bisukan", "Silence"),
    "incidents.silence_why": ("Alasan membisukan", "Why silence"),
    "incidents.silenced": ("Notifikasi dibisukan sampai {at}", "Notifications silenced until {at}"),
    "incidents.done": ("Tersimpan", "Saved"),
    "incidents.forbidden": ("Peran Anda tidak boleh melakukan ini", "Your role may not do this"),
    "kind.level": ("tinggi air", "water level"),
    "kind.rate": ("laju naik", "rise rate"),
    "kind.upstream": ("gelombang hulu", "upstream wave"),
    "kind.no_data": ("tidak ada data", "no data"),
    "kind.sensor_fault": ("sensor rusak", "sensor fault"),
    "kind.forecast": ("prakiraan", "forecast"),
    "login.title": ("Masuk ke Siaga", "Sign in to Siaga"),
    "login.username": ("Nama pengguna", "Username"),
    "login.password": ("Kata sandi", "Password"),
    "login.submit": ("Masuk", "Sign in"),
    "login.failed": ("Nama pengguna atau kata sandi salah", "Wrong username or password"),
    "login.limited": (
        "Terlalu banyak percobaan; coba lagi nanti",
        "Too many attempts; try again later",
    ),
    "error.load": ("Gagal memuat data", "Could not load data"),
    "ack.title": ("Konfirmasi peringatan", "Acknowledge the alert"),
    "ack.incident": ("Insiden {id}", "Incident {id}"),
    "ack.advice": ("Tindakan", "What to do"),
    "ack.already": ("Sudah dikonfirmasi oleh {by}.", "Already acknowledged by {by}."),
    "ack.as": ("Anda mengonfirmasi sebagai {name}.", "You acknowledge as {name}."),
    "ack.name": ("Nama Anda", "Your name"),
    "ack.button": ("Konfirmasi", "Acknowledge"),
    "ack.done": (
        "Insiden {id} dikonfirmasi oleh {by}. Terima kasih.",
        "Incident {id} acknowledged by {by}. Thank you.",
    ),
    "ack.used": ("Tautan ini sudah dipakai.", "This link was used already."),
    "ack.invalid": ("Tautan ini tidak berlaku.", "This link is not valid."),
    "ack.expired": ("Tautan ini sudah kedaluwarsa.", "This link has expired."),
    "ack.not_found": ("Insiden tidak ditemukan.", "Incident not found."),
    "profile.title": ("Profil", "Profile"),
    "profile.telegram": ("Hubungkan Telegram", "Link Telegram"),
    "profile.telegram_why": (
        "Setelah terhubung, tombol Akui, Saya tangani dan Bisukan 1 jam pada pesan Siaga di "
        "Telegram bertindak atas nama Anda.",
        "Once linked, the Akui, Saya tangani and Bisukan 1 jam buttons on Siaga's Telegram "
        "messages act in your name.",
    ),
    "profile.step_code": (
        "Buat kode sekali pakai (berlaku 10 menit).",
        "Make a one-time code (valid 10 minutes).",
    ),
    "profile.step_send": (
        "Kirim perintahnya ke bot Siaga dalam obrolan pribadi.",
        "Send the command to Siaga's bot in a private chat.",
    ),
    "profile.make_code": ("Buat kode", "Make a code"),
    "profile.send_this": ("Kirim ini ke bot Siaga:", "Send this to Siaga's bot:"),
    "profile.valid_until": (
        "Berlaku sampai {at}; hanya sekali pakai.",
        "Valid until {at}; works once.",
    ),
    "profile.unlink": ("Putuskan Telegram", "Unlink Telegram"),
    "profile.unlinked": ("Telegram tidak lagi terhubung", "Telegram unlinked"),
    "profile.no_key": ("Kunci API tidak punya akun Telegram", "An API key has no Telegram account"),
    "range.6h": ("6 jam", "6 h"),
    "range.24h": ("24 jam", "24 h"),
    "range.3d": ("3 hari", "3 d"),
    "range.7d": ("7 hari", "7 d"),
    "range.30d": ("30 hari", "30 d"),
    "range.90d": ("90 hari", "90 d"),
}


def pick_language(query: str | None, cookie: str | None) -> Language:
    """The language a request asked for: ``?lang=`` first, then the cookie, else Indonesian."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


def strings(language: Language) -> dict[str, str]:
    """Every UI string in one language."""
    index = LANGUAGES.index(language)
    return {key: pair[index] for key, pair in STRINGS.items()}
