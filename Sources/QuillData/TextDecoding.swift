#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytes of unknown encoding to text: UTF-8 (with or without BOM), UTF-16 with a BOM, GB18030
/// (which includes GBK and GB2312), Big5, or Latin-1 (Windows-1252) as the last resort. The
/// choice is recorded, and bytes that do not decode are counted (each becomes U+FFFD), never
/// dropped silently. Conversions other than UTF run through the C library's iconv.
public enum TextDecoding {
    public enum Encoding: String, Sendable, Codable, CaseIterable {
        case utf8 = "UTF-8", utf8BOM = "UTF-8 (BOM)", utf16LE = "UTF-16LE", utf16BE = "UTF-16BE"
        case gb18030 = "GB18030", big5 = "Big5", latin1 = "Windows-1252"
    }

    public struct Decoded: Sendable {
        public var text: String
        public var encoding: Encoding
        /// Bytes that were not valid in `encoding`.
        public var invalidBytes: Int
    }

    /// Decodes with `encoding`, or with the one `detect` finds.
    public static func decode(_ bytes: [UInt8], as encoding: Encoding? = nil) -> Decoded {
        if let encoding { return convert(bytes, from: encoding) }
        let sample = sample(bytes)
        let best = bestDecoding(sample)
        return sample.count == bytes.count ? best : convert(bytes, from: best.encoding)
    }

    /// The encoding of `bytes` (a whole file, or the start of one), judged on their first 64 KB
    /// of whole lines: a sample cut inside a character would look like another encoding.
    public static func detect(_ bytes: [UInt8]) -> Encoding { bestDecoding(sample(bytes)).encoding }

    static func sample(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.count > 1 << 16 else { return bytes }
        let head = bytes.prefix(1 << 16)
        return Array(head.lastIndex(of: 0x0A).map { head[...$0] } ?? head)
    }

    /// A byte order mark; else UTF-8 if it decodes cleanly; else the legacy Chinese encoding with
    /// the fewest errors and the most common characters; else Windows-1252.
    static func bestDecoding(_ bytes: [UInt8]) -> Decoded {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { return convert(bytes, from: .utf8BOM) }
        if bytes.starts(with: [0xFF, 0xFE]) { return convert(bytes, from: .utf16LE) }
        if bytes.starts(with: [0xFE, 0xFF]) { return convert(bytes, from: .utf16BE) }
        let utf8 = convert(bytes, from: .utf8)
        if utf8.invalidBytes == 0 { return utf8 }
        let candidates = [convert(bytes, from: .gb18030), convert(bytes, from: .big5)]
        let best = candidates.min { a, b in
            a.invalidBytes != b.invalidBytes ? a.invalidBytes < b.invalidBytes : commonness(a) > commonness(b)
        }!
        // text that is mostly ASCII with scattered high bytes reads as Latin-1, not as rare Han
        if best.invalidBytes > bytes.count / 200 || commonness(best) < 0.3 {
            if utf8.invalidBytes <= best.invalidBytes && utf8.invalidBytes < bytes.count / 100 { return utf8 }
            return convert(bytes, from: .latin1)
        }
        return best
    }

    /// The fraction of the Han characters that are among the most frequent ones of either script.
    static func commonness(_ decoded: Decoded) -> Double {
        var han = 0, common = 0
        for s in decoded.text.unicodeScalars where s.value >= 0x4E00 && s.value <= 0x9FFF {
            han += 1
            if frequentHan.contains(s) { common += 1 }
        }
        return han == 0 ? 0 : Double(common) / Double(han)
    }

    /// About 500 of the most frequent characters of simplified and traditional Chinese text.
    static let frequentHan: Set<Unicode.Scalar> = Set(("的一是不了人我在有他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢雷警获模充负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈策演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮挥胜降阶审沉坚善妈刘读啊超免压银买皇养伊怀执副乱抗犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背阵草脚概恶块顿敢守酒岛托央户烈洋哥索胡款靠评版宝座释景顾弟登货互付伯慢欧换闻危忙核暗姐介坏讨丽良序升监临亮露永呼味野架域沙掉括舰鱼杂误湾吉减编楚肯测败屋跑梦散温困剑渐封救贵枪缺楼县尚毫移娘朋画班智亦耳恩短掌恐遗固席松秘谢鲁遇康虑幸均销钟诗藏赶剧票损忽巨炮旧端探湖录叶春乡附吸予礼港雨呀板庭妇归睛饭额含顺输摇招婚脱补谓督毒油疗旅泽材灭逐莫笔亡鲜词圣择寻厂睡博勒烟授诺伦岸奥唐卖俄炸载洛健堂旁宫喝借君禁阴园谋宋避抓荣姑孙逃牙束跳顶玉镇雪午练迫爷篇肉嘴馆遍凡础洞卷坦牛宁纸诸训私庄祖丝翻暴森塔默握戏隐熟骨访弱蒙歌店鬼软典欲萨伙遭盘爸扩盖弄雄稳忘亿刺拥徒姆杨齐赛趣曲刀床迎冰虚玩析窗醒妻透购替塞努休虎扬途侵刑绿兄迅套贸毕唯谷轮库迹尤竞街促延震弃甲伟麻川申缓潜闪售灯针哲络抵朱埃抱鼓植纯夏忍页杰筑折郑贝尊吴秀混臣雅振染盛怒舞圆搞狂措姓残秋培迷诚宽宇猛摆梅毁伸摩盟末乃悲拍丁赵仙骑这們個來為國說時們會對後從過還點學問開關見現長經種發無條實書聽頭東車動產電機導軍親業話員變樣應邊愛萬鄉語讓區報師處誰當醫總讀題門結較歲離氣寫書飛風進選單興錢隊術")
        .unicodeScalars)

    /// Bytes → text in a known encoding, counting what does not decode.
    static func convert(_ bytes: [UInt8], from encoding: Encoding) -> Decoded {
        switch encoding {
        case .utf8, .utf8BOM:
            let body = encoding == .utf8BOM ? Array(bytes.dropFirst(3)) : bytes
            if let valid = String(validating: body, as: UTF8.self) { return Decoded(text: valid, encoding: encoding, invalidBytes: 0) }
            var invalid = 0, text = ""
            text.reserveCapacity(body.count)
            var decoder = UTF8()
            var iterator = body.makeIterator()
            loop: while true {
                switch decoder.decode(&iterator) {
                case .scalarValue(let s): text.unicodeScalars.append(s)
                case .emptyInput: break loop
                case .error: invalid += 1; text.unicodeScalars.append("\u{FFFD}")
                }
            }
            return Decoded(text: text, encoding: encoding, invalidBytes: invalid)
        case .latin1:
            // Windows-1252: Latin-1 with printable characters in 0x80-0x9F
            let text = String(String.UnicodeScalarView(bytes.map { b in
                b >= 0x80 && b <= 0x9F ? Unicode.Scalar(cp1252[Int(b - 0x80)])! : Unicode.Scalar(b)
            }))
            return Decoded(text: text, encoding: .latin1, invalidBytes: 0)
        case .utf16LE, .utf16BE, .gb18030, .big5:
            let body = encoding == .utf16LE || encoding == .utf16BE ? Array(bytes.dropFirst(2)) : bytes
            let name = encoding == .utf16LE ? "UTF-16LE" : encoding == .utf16BE ? "UTF-16BE" : encoding == .big5 ? "BIG5-HKSCS" : "GB18030"
            return iconvDecode(body, from: name, encoding: encoding)
        }
    }

    static let cp1252: [UInt32] = [
        0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
        0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
    ]

    /// Text → bytes in a legacy encoding (for writing test inputs and samples); unencodable
    /// characters are left out.
    public static func iconvEncode(_ text: String, to name: String) -> [UInt8] {
        let cd = iconv_open(name + "//IGNORE", "UTF-8")
        guard cd != iconv_t(bitPattern: -1) else { return [] }
        defer { iconv_close(cd) }
        var input = Array(text.utf8)
        var output = [UInt8](repeating: 0, count: input.count * 4 + 16)
        let produced = input.withUnsafeMutableBufferPointer { source in
            output.withUnsafeMutableBufferPointer { out in
                var inPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(source.baseAddress)?.assumingMemoryBound(to: CChar.self)
                var outPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(out.baseAddress)?.assumingMemoryBound(to: CChar.self)
                var inLeft = source.count, outLeft = out.count
                _ = iconv(cd, &inPtr, &inLeft, &outPtr, &outLeft)
                return out.count - outLeft
            }
        }
        return Array(output[0..<produced])
    }

    /// iconv to UTF-32LE; an invalid or truncated sequence costs one byte and one U+FFFD.
    static func iconvDecode(_ bytes: [UInt8], from name: String, encoding: Encoding) -> Decoded {
        let cd = iconv_open("UTF-32LE", name)
        guard cd != iconv_t(bitPattern: -1) else {
            return Decoded(text: String(repeating: "\u{FFFD}", count: bytes.count), encoding: encoding, invalidBytes: bytes.count)
        }
        defer { iconv_close(cd) }
        var scalars = String.UnicodeScalarView()
        var invalid = 0
        var input = bytes
        var output = [UInt32](repeating: 0, count: 4096)
        input.withUnsafeMutableBufferPointer { source in
            var inPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(source.baseAddress)?.assumingMemoryBound(to: CChar.self)
            var inLeft = source.count
            while inLeft > 0 {
                let (result, produced, error): (Int, Int, Int32) = output.withUnsafeMutableBufferPointer { out in
                    var outPtr: UnsafeMutablePointer<CChar>? = UnsafeMutableRawPointer(out.baseAddress)?.assumingMemoryBound(to: CChar.self)
                    var outLeft = out.count * 4
                    let r = iconv(cd, &inPtr, &inLeft, &outPtr, &outLeft)
                    return (r, (out.count * 4 - outLeft) / 4, errno)
                }
                for v in output[0..<produced] { scalars.append(Unicode.Scalar(v) ?? "\u{FFFD}") }
                if result == -1 && error != E2BIG {
                    // EILSEQ or EINVAL: skip one byte
                    invalid += 1
                    scalars.append("\u{FFFD}")
                    inPtr = inPtr.map { $0 + 1 }
                    inLeft -= 1
                    _ = iconv(cd, nil, nil, nil, nil)
                }
            }
        }
        return Decoded(text: String(scalars), encoding: encoding, invalidBytes: invalid)
    }
}
