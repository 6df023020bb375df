<?php
// This file is part of local_caseload, the Caseload companion plugin for Moodle.
//
// local_caseload is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// local_caseload is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <http://www.gnu.org/licenses/>.

namespace local_caseload\check;

use core\check\check;
use core\check\result;
use local_caseload\status;

/**
 * Site administration > Reports > System status: whether roster events reach Caseload.
 *
 * @package    local_caseload
 * @copyright  2026 Caseload contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class delivery extends check {

    /**
     * Link to the plugin's settings (state and "Test connection").
     *
     * @return \action_link|null
     */
    public function get_action_link(): ?\action_link {
        return new \action_link(new \moodle_url('/admin/settings.php', ['section' => 'local_caseload']),
            get_string('pluginname', 'local_caseload'));
    }

    /**
     * Error while deliveries fail, OK otherwise.
     *
     * @return result
     */
    public function get_result(): result {
        $message = status::failing_message();
        if ($message !== '') {
            return new result(result::ERROR, s($message));
        }
        return new result(result::OK, get_string('deliveryok', 'local_caseload'));
    }
}
