<?php
// Runs the plugin's deliver_event task against stand-ins for the few Moodle APIs it calls (config, curl,
// the ad-hoc task base class), so that php-cli can check what the task does with each answer from Caseload.
// Usage: php deliver_event_harness.php <plugin dir> <http code> <answer body> [configured 0|1] [fail delay]
// Prints one JSON object: threw, attempts, faildelay, config, sent headers. Test support only, not Moodle code.

namespace core\task {
    abstract class adhoc_task {
        private $attempts = 1;
        private $faildelay = 0;
        private $customdata = null;
        public function set_attempts_available(int $n): void { $this->attempts = $n; }
        public function get_attempts_available(): int { return $this->attempts; }
        public function set_fail_delay($d) { $this->faildelay = $d; }
        public function get_fail_delay() { return $this->faildelay; }
        public function set_custom_data($d) { $this->customdata = $d; }
        public function get_custom_data() { return $this->customdata; }
        abstract public function execute();
    }
}

namespace {
    define('MOODLE_INTERNAL', true);
    $libdir = sys_get_temp_dir() . '/caseload-moodle-stub-' . getmypid();
    @mkdir($libdir);
    file_put_contents($libdir . '/filelib.php', "<?php\n"); // Moodle's curl class is the stand-in below
    $CFG = (object)['libdir' => $libdir];
    $CONFIG = [];
    $SENT = [];
    $ANSWER = [(int)$argv[2], $argv[3]];
    function get_config($plugin, $name) { global $CONFIG; return $CONFIG[$name] ?? false; }
    function set_config($name, $value, $plugin) { global $CONFIG; $CONFIG[$name] = (string)$value; }
    function unset_config($name, $plugin) { global $CONFIG; unset($CONFIG[$name]); }
    function get_string($id, $component) { return "[$id]"; }
    function mtrace($text) { }
    class moodle_exception extends \Exception {
        public function __construct($id, $module = '', $link = '', $a = null, $debuginfo = null) {
            parent::__construct((string)$debuginfo);
        }
    }
    class curl {
        public $error = 'Connection refused';
        private $headers = [];
        public function setHeader($h) { $this->headers = $h; }
        public function post($url, $body, $options) {
            global $SENT; $SENT = ['url' => $url, 'body' => $body, 'headers' => $this->headers]; global $ANSWER;
            return $ANSWER[1];
        }
        public function get_info() { global $ANSWER; return ['http_code' => $ANSWER[0]]; }
        public function get_errno() { global $ANSWER; return $ANSWER[0] === 0 ? 7 : 0; }
    }
    $plugin = $argv[1];
    require($plugin . '/classes/delivery.php');
    require($plugin . '/classes/status.php');
    require($plugin . '/classes/client.php');
    require($plugin . '/classes/task/deliver_event.php');
    if (($argv[4] ?? '1') === '1') {
        $CONFIG = ['endpoint' => 'https://caseload.example.test/webhooks/moodle/district-moodle',
                   'secret' => 'moodle-webhook-secret-for-tests-0123456789', 'timeout' => '10'];
    }
    $task = new \local_caseload\task\deliver_event();
    $task->set_custom_data(['schema' => 'caseload.moodle-event/1', 'event_uid' => 'uid-0001-aaaa']);
    $task->set_fail_delay((int)($argv[5] ?? 0));
    $threw = null;
    try {
        $task->execute();
    } catch (\moodle_exception $e) {
        $threw = $e->getMessage();
    }
    echo json_encode(['threw' => $threw, 'attempts' => $task->get_attempts_available(),
        'faildelay' => $task->get_fail_delay(), 'config' => $CONFIG, 'sent' => $SENT,
        'customdata' => $task->get_custom_data()], JSON_UNESCAPED_SLASHES);
    unlink($libdir . '/filelib.php');
    rmdir($libdir);
}
