package cli_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// english finds English prose: words of a sentence that a Chinese text
// has no reason to hold (command lines, flags, ids and paths have none).
var english = regexp.MustCompile(`\b(the|is|was|are|and|of|to|from|Next|Made|Created|Imported|Election|Revoked|Sending|warning)\b`)

// cmSaysChinese checks out is in Chinese: it says each of subs, and has
// no English prose beside the commands, ids and server detail it quotes.
func cmSaysChinese(t *testing.T, what, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Errorf("%s does not say %q:\n%s", what, s, out)
		}
	}
	// What is quoted for the person to type or compare is left as it is.
	bare := regexp.MustCompile(`'doorstep [^']*'|doorstep [a-z]+ [a-z]+ --[^\n]*`).ReplaceAllString(out, "")
	if m := english.FindString(bare); m != "" {
		t.Errorf("%s has English (%q) in Chinese:\n%s", what, m, out)
	}
}

// TestCommitteeSpeaksChinese: a committee's day through real gRPC with
// the locale set to Chinese, and with --lang zh: every command's words
// are Chinese, and so are its usual mistakes.
func TestCommitteeSpeaksChinese(t *testing.T) {
	srv := startCmServer(t, t.TempDir())
	e := newCmEnv(t)
	e.vars["DOORSTEP_SERVER"] = srv.srv.Addr()
	e.vars["DOORSTEP_OPERATOR_TOKEN"] = srv.srv.OperatorToken()
	e.vars["LANG"] = "zh_CN.UTF-8"
	electionFile, rosterFile := writeExamples(t)
	dir := filepath.Join(e.config, "committee")

	// Before the key is made.
	code, _, errs := e.run(t, "committee", "show")
	if code != 1 {
		t.Errorf("show without a key: exit %d", code)
	}
	cmSaysChinese(t, "show without a key", errs, dir+"：这个文件夹里没有委员会密钥", "'doorstep committee init'")

	cmSaysChinese(t, "committee init", e.mustRun(t, "committee", "init"), "已在 "+filepath.Join(dir, "committee.key")+" 生成委员会密钥。", "委员会公钥：")
	code, _, errs = e.run(t, "committee", "init")
	if code != 1 {
		t.Errorf("second init: exit %d", code)
	}
	cmSaysChinese(t, "second init", errs, "已经有委员会密钥")

	out := e.mustRun(t, "election", "create", "--file", electionFile)
	cmSaysChinese(t, "election create", out, "已创建选举 "+exampleElection, "（特别事项：同意的面积和人数均须达到参与表决的四分之三）", "有争议房屋的处理：暂不计入，由委员会裁定", "密钥指纹 "+srv.srv.Fingerprint(), "选票日志：", "下一步：")
	code, _, errs = e.run(t, "election", "create", "--file", electionFile)
	if code != 1 {
		t.Errorf("second create: exit %d", code)
	}
	cmSaysChinese(t, "second create", errs, "已经在这台电脑上创建过")

	out = e.mustRun(t, "roster", "import", "--election", exampleElection, "--file", rosterFile)
	cmSaysChinese(t, "roster import", out, "已为选举 "+exampleElection+" 导入名册", "房屋：288 户（开发商持有 20 户）", "业主人数：255", "名册 sha256：")
	cmSaysChinese(t, "roster import again", e.mustRun(t, "roster", "import", "--election", exampleElection, "--file", rosterFile), "已经导入过这份名册")

	cmSaysChinese(t, "election open", e.mustRun(t, "election", "open", "--election", exampleElection), "已开始", "名册已冻结：288 户")

	out = e.mustRun(t, "device", "enroll", "--election", exampleElection, "--label", "王芳 3栋", "--qr", "none")
	cmSaysChinese(t, "device enroll", out, "的设备登记码（王芳 3栋）", "只能用一次，有效期到", "在入户人员的设备上运行：doorstep canvass join '")
	text := codeRE.FindString(out)
	canvasser := newCvEnv(t)
	canvasser.mustRun(t, "", "canvass", "join", text)
	devices := e.mustRun(t, "device", "list", "--election", exampleElection, "--json")
	id := regexp.MustCompile(`"device_id":\s*"([^"]+)"`).FindStringSubmatch(devices)
	if id == nil {
		t.Fatalf("no device id in %s", devices)
	}
	cmSaysChinese(t, "device revoke", e.mustRun(t, "device", "revoke", "--election", exampleElection, "--device", id[1], "--reason", "手机丢了"),
		"已撤销设备 "+id[1]+"（王芳 3栋）", "尚未同步的记录将被拒绝")

	cmSaysChinese(t, "committee show", e.mustRun(t, "committee", "show"), "委员会文件夹：", "选举  ", "未发送", "288 户")
	cmSaysChinese(t, "election close", e.mustRun(t, "election", "close", "--election", exampleElection), "已于", "截止", "同步截止时间")
	cmSaysChinese(t, "dashboard link", e.mustRun(t, "committee", "dashboard", "--election", exampleElection), "它只能让一个浏览器登录选举 "+exampleElection+" 的看板", "不要发给任何人")

	// --lang overrides the locale, both ways.
	delete(e.vars, "LANG")
	cmSaysChinese(t, "committee show --lang zh", e.mustRun(t, "committee", "show", "--lang", "zh"), "委员会文件夹：")
	e.vars["LANG"] = "zh_CN.UTF-8"
	cmWant(t, e.mustRun(t, "committee", "show", "--lang", "en"), "Committee folder: ")

	// A machine that has never seen the server, and cannot reach it.
	stranger := newCmEnv(t)
	stranger.vars["LANG"] = "zh_CN.UTF-8"
	stranger.vars["DOORSTEP_SERVER"] = srv.srv.Addr()
	stranger.mustRun(t, "committee", "init")
	code, _, errs = stranger.run(t, "election", "open", "--election", exampleElection, "--server", "127.0.0.1:1", "--timeout", "2s")
	if code != 1 || !strings.Contains(errs, "无法连接计票服务器 127.0.0.1:1 以获取它的 TLS 证书") {
		t.Errorf("unreachable on first contact: exit %d, stderr %q", code, errs)
	}
	// One that reaches it with another committee's key: told the server
	// does not take this key, in Chinese.
	code, _, errs = stranger.run(t, "election", "close", "--election", exampleElection)
	if code != 1 || !strings.Contains(errs, "服务器 "+srv.srv.Addr()+" 不接受这把委员会密钥用于选举 "+exampleElection) {
		t.Errorf("another committee's key: exit %d, stderr %q", code, errs)
	}
	if !strings.Contains(errs, "第一次连接计票服务器") {
		t.Errorf("first contact not told in Chinese: %q", errs)
	}
}
